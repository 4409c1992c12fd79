//go:build !unit

package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

const liveDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: registry.k8s.io/pause:3.10}
      - {name: sidecar, image: registry.k8s.io/pause:3.10}
`

// TestGoldenLive runs the live-view commands (app resources, manifests,
// events, action, logs) against a real API and the real live-view broker,
// whose requests a simulated agent answers over Attach/Deliver from the
// bundles it applied, and compares each output and exit code with its
// golden file. The hub allows one log stream per agent, so a second log
// while one is followed is refused (429).
func TestGoldenLive(t *testing.T) {
	t.Setenv("FLOTILLA_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("FLOTILLA_SERVER", "")
	t.Setenv("FLOTILLA_TOKEN", "")
	h := apitest.New(t, apitest.Options{Live: liveview.Limits{MaxLogsPerAgent: 1}, Files: map[string]string{"guestbook/web.yaml": liveDeployment}})
	eu := h.Connect(t, "prod-eu-1")
	h.Connect(t, "prod-us-1")

	for _, c := range []string{"prod-eu-1", "prod-us-1"} {
		h.WaitFor(t, 10*time.Second, "guestbook Synced on "+c, func() bool { return appState(t, h, "guestbook", c).Sync == "Synced" })
	}
	var rr api.ResourcesResponse
	if err := newTestClient(h).do(t.Context(), "GET", "/api/v1/apps/guestbook/resources?cluster=prod-eu-1", nil, &rr); err != nil {
		t.Fatal(err)
	}
	pod := ""
	for _, n := range rr.Clusters[0].Nodes {
		if n.Kind == "Pod" {
			pod = n.Name
		}
	}
	if pod == "" {
		t.Fatalf("no Pod in the tree %+v", rr)
	}
	eu.WriteLog(pod, "starting web", "listening on :80", "GET / 200")
	seen := timestamppb.New(apitest.Epoch.Add(90 * time.Minute))
	eu.SetEvents(
		&apiv1alpha1.LiveEvent{Object: &apiv1alpha1.ObjectRef{Group: "apps", Kind: "Deployment", Namespace: "guestbook", Name: "web"}, Type: "Normal", Reason: "ScalingReplicaSet", Message: "Scaled up replica set web-1 to 1", Count: 1, Source: "deployment-controller", LastSeen: seen},
		&apiv1alpha1.LiveEvent{Object: &apiv1alpha1.ObjectRef{Kind: "Pod", Namespace: "guestbook", Name: pod}, Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container sidecar", Count: 3, Source: "kubelet", LastSeen: seen},
		&apiv1alpha1.LiveEvent{Object: &apiv1alpha1.ObjectRef{Kind: "Service", Namespace: "guestbook", Name: "guestbook-ui"}, Type: "Normal", Reason: "Updated", Message: "service updated", Count: 1, Source: "service-controller", LastSeen: seen},
	)

	steps := []step{
		{name: "app-resources", args: []string{"app", "resources", "guestbook", "--cluster", "prod-eu-1"}},
		{name: "app-resources-every-cluster", args: []string{"app", "resources", "billing"}},
		{name: "app-resources-json", args: []string{"app", "resources", "guestbook", "--cluster", "prod-us-1", "-o", "json"}},
		{name: "app-resources-readonly", args: []string{"app", "resources", "guestbook", "--cluster", "prod-eu-1"}, token: h.ReadOnlyToken},
		{name: "app-manifests", args: []string{"app", "manifests", "guestbook", "--cluster", "prod-eu-1"}},
		{name: "app-events", args: []string{"app", "events", "guestbook", "--cluster", "prod-eu-1"}},
		{name: "app-events-object", args: []string{"app", "events", "guestbook", "deploy/web", "--cluster", "prod-eu-1"}},
		{name: "app-action-restart", args: []string{"app", "action", "guestbook", "restart", "deploy/web", "--cluster", "prod-eu-1"}},
		{name: "app-action-delete", args: []string{"app", "action", "guestbook", "delete", "pod/" + pod, "--cluster", "prod-eu-1"}},
		{name: "logs-workload", args: []string{"logs", "guestbook", "deploy/web", "--cluster", "prod-eu-1"}},
		{name: "logs-pod-tail", args: []string{"logs", "guestbook", pod, "--cluster", "prod-eu-1", "--tail", "1", "--container", "sidecar"}},
		{name: "err-live-which-cluster", args: []string{"app", "events", "guestbook"}},
		{name: "err-live-disconnected", args: []string{"logs", "billing", "--cluster", "staging-1", "deploy/web"}},
		{name: "err-action-not-owned", args: []string{"app", "action", "guestbook", "restart", "deploy/other", "--cluster", "prod-eu-1"}},
		{name: "err-action-kind", args: []string{"app", "action", "guestbook", "restart", "cm/guestbook-config", "--cluster", "prod-eu-1"}},
		{name: "err-action-readonly", args: []string{"app", "action", "guestbook", "restart", "deploy/web", "--cluster", "prod-eu-1"}, token: h.ReadOnlyToken},
		{name: "err-action-usage", args: []string{"app", "action", "guestbook", "scale", "deploy/web"}},
		{name: "err-logs-no-pod", args: []string{"logs", "guestbook", "cm/guestbook-config", "--cluster", "prod-eu-1"}},
		{name: "err-logs-container", args: []string{"logs", "guestbook", "deploy/web", "--cluster", "prod-eu-1", "--container", "nope"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			tok := h.AdminToken
			if s.token != "" {
				tok = s.token
			}
			out, err := runCLI(t, h.Server.URL, tok, s.args...)
			goldenLive(t, h, s.name, out, err)
		})
	}

	// logs -f: the followed log shows what is there, then each new line,
	// until the person interrupts it (the context ends); meanwhile a second
	// log is over the hub's cap of one per agent.
	t.Run("logs-follow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out := newSyncBuffer()
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, env{stdout: out, stderr: out, now: func() time.Time { return fixedNow }},
				[]string{"--server", h.Server.URL, "--token", h.AdminToken, "logs", "guestbook", "deploy/web", "-f", "--cluster", "prod-eu-1"})
		}()
		waitOutput(t, out, "GET / 200\n")
		busy, err := runCLI(t, h.Server.URL, h.AdminToken, "logs", "guestbook", pod, "--cluster", "prod-eu-1")
		goldenLive(t, h, "err-logs-busy", busy, err)
		eu.WriteLog(pod, "GET /healthz 200")
		waitOutput(t, out, "GET /healthz 200\n")
		cancel()
		err = <-done
		goldenLive(t, h, "logs-follow", out.String(), err)
	})
	// The followed log's slot was freed when its client went.
	t.Run("logs-after-follow", func(t *testing.T) {
		err := harness.Eventually(t.Context(), 10*time.Second, 10*time.Millisecond, func() error {
			_, err := runCLI(t, h.Server.URL, h.AdminToken, "logs", "guestbook", pod, "--cluster", "prod-eu-1", "--tail", "1")
			return err
		})
		if err != nil {
			t.Fatalf("a log after the followed one ended: %v", err)
		}
	})
}

// newTestClient is a client of the fixture's API with the admin token.
func newTestClient(h *apitest.Hub) *client {
	return newClient(h.Server.URL, h.AdminToken)
}

// waitOutput waits, write by write, until out holds want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case <-out.wrote:
		case <-deadline:
			t.Fatalf("output has no %q after 10s:\n%s", want, out.String())
		}
	}
}

func goldenLive(t *testing.T, h *apitest.Hub, name, out string, err error) {
	t.Helper()
	got := out + fmt.Sprintf("--- exit %d", ExitCode(err))
	if err != nil {
		got += ": " + err.Error()
	}
	got = strings.ReplaceAll(scrub(h, got+"\n"), h.Server.URL, "$HUB")
	golden(t, name, got)
}
