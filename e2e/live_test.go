//go:build !unit

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// liveSecret is the Secret value that must never reach the hub.
const liveSecret = "s3cr3t-hunter2"

var liveFiles = map[string]string{
	"live/web.yaml": deployment("web", 1, "registry.k8s.io/pause:3.10") + "---\n" + service("web"),
	"live/secret.yaml": `apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: ` + liveSecret + `}
`,
	"live/cron.yaml": `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: tick, image: registry.k8s.io/pause:3.10}]
`,
}

// TestLiveView sees inside a cluster through the hub, over the agent's own
// stream: the live resource tree (the app's objects and the ReplicaSets,
// Pods and EndpointSlices they own, with health), a Secret's manifest
// redacted, events, a pod's log through the real API server's pods/log
// (kwok serves the fake node's logs) followed while the same stream
// converges a new commit, and actions: allowed on the app's objects,
// refused by the agent on an object the app does not own, refused by the
// hub for a read-only token, and audited.
func TestLiveView(t *testing.T) {
	parallel(t)
	e := newEnv(t, "alpha")
	e.startHub(hubDefaults())
	e.enroll("alpha", "env=live")
	e.waitConnected(e.hub, "alpha", true)

	rev := e.commit("live app", liveFiles)
	e.writeApp("live", appSpec{name: "live", path: "live", ns: "live", clusters: []string{"alpha"}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("live", rev, "alpha")

	// The tree: each kind the app owns, linked by owner UIDs.
	var tree api.ResourceTree
	e.eventually("resource tree with ReplicaSet, Pod and EndpointSlice", func() error {
		var rr api.ResourcesResponse
		if err := e.hub.DoJSON(e.t.Context(), "GET", "/api/v1/apps/live/resources", nil, &rr); err != nil {
			return err
		}
		if len(rr.Clusters) != 1 || rr.Clusters[0].Cluster != "alpha" || rr.Clusters[0].Error != "" {
			return fmt.Errorf("clusters %+v", rr.Clusters)
		}
		tree = rr.Clusters[0]
		return checkTree(tree)
	})
	pod := nodeOf(tree, "Pod", "")
	if out := e.cli("app", "resources", "live"); !strings.Contains(out, "└─ReplicaSet") || !strings.Contains(out, pod.Name) {
		t.Errorf("flotilla app resources live:\n%s\nwant the ReplicaSet under its Deployment and pod %s", out, pod.Name)
	}

	// The Secret's manifest: redacted by the agent, the value nowhere in
	// the hub's answer (neither as sent in git nor base64 as stored).
	raw := e.getRaw(e.hub.Token, "/api/v1/apps/live/live/manifest?kind=Secret&name=creds", http.StatusOK)
	for _, leak := range []string{liveSecret, base64.StdEncoding.EncodeToString([]byte(liveSecret))} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Fatalf("the hub's answer holds the Secret's value %q:\n%s", leak, raw)
		}
	}
	var mr api.LiveManifestResponse
	if err := json.Unmarshal(raw, &mr); err != nil {
		t.Fatal(err)
	}
	var secret struct {
		Metadata struct {
			ManagedFields []any `json:"managedFields"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(mr.Object, &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Data["password"] != manifest.Redacted || len(secret.Metadata.ManagedFields) != 0 {
		t.Errorf("Secret manifest: data %v, %d managedFields; want password REDACTED and none", secret.Data, len(secret.Metadata.ManagedFields))
	}
	if out := e.cli("app", "manifests", "live"); strings.Contains(out, liveSecret) || !strings.Contains(out, manifest.Redacted) {
		t.Errorf("flotilla app manifests live shows the Secret's value or no redaction:\n%s", out)
	}

	// Events of the Deployment and what it owns.
	e.eventually("events of deploy/web", func() error {
		var er api.AppEventsResponse
		if err := e.hub.DoJSON(e.t.Context(), "GET", "/api/v1/apps/live/live/events?group=apps&kind=Deployment&name=web", nil, &er); err != nil {
			return err
		}
		for _, ev := range er.Events {
			if ev.Reason == "ScalingReplicaSet" && ev.Object.Kind == "Deployment" {
				return nil
			}
		}
		return fmt.Errorf("events %+v: want the Deployment's ScalingReplicaSet", er.Events)
	})
	if out := e.cli("app", "events", "live"); !strings.Contains(out, "ScalingReplicaSet") {
		t.Errorf("flotilla app events live:\n%s\nwant ScalingReplicaSet", out)
	}

	if pc, ok := e.clusters["alpha"].(*cluster.ProcessCluster); ok {
		e.liveLogs(pc, pod.Name)
		e.liveBrowser(pc, pod.Name)
	} else {
		t.Log("pod logs not checked: only process clusters serve them from a file")
	}

	// Actions. An object the app does not own is refused by the agent.
	e.kubectl("alpha", "create", "deployment", "outsider", "-n", "live", "--image=registry.k8s.io/pause:3.10")
	body := e.postRaw(e.hub.Token, "/api/v1/apps/live/actions", api.ActionRequest{Action: api.ActionRestart, Object: api.ObjectRef{Group: "apps", Kind: "Deployment", Name: "outsider"}}, http.StatusForbidden)
	if !strings.Contains(string(body), "neither an object of application") {
		t.Errorf("restart of an outsider: %s", body)
	}
	if ann := e.kubectl("alpha", "get", "deployment", "outsider", "-n", "live", "-o", "jsonpath={.spec.template.metadata.annotations}"); strings.Contains(ann, "restartedAt") {
		t.Errorf("the outsider was restarted: %s", ann)
	}
	// A read-only token reads the tree but runs no action.
	var tok api.CreateTokenResponse
	if err := e.hub.DoJSON(e.t.Context(), "POST", "/api/v1/tokens", api.CreateTokenRequest{Name: "viewer", Role: api.RoleReadOnly}, &tok); err != nil {
		t.Fatal(err)
	}
	e.getRaw(tok.Token, "/api/v1/apps/live/resources", http.StatusOK)
	e.postRaw(tok.Token, "/api/v1/apps/live/actions", api.ActionRequest{Action: api.ActionRestart, Object: api.ObjectRef{Group: "apps", Kind: "Deployment", Name: "web"}}, http.StatusForbidden)
	if ann := e.kubectl("alpha", "get", "deployment", "web", "-n", "live", "-o", "jsonpath={.spec.template.metadata.annotations}"); strings.Contains(ann, "restartedAt") {
		t.Errorf("a read-only token restarted web: %s", ann)
	}
	// A deployer of another project sees nothing of the app live and acts
	// on nothing.
	if err := e.hub.DoJSON(e.t.Context(), "POST", "/api/v1/tokens", api.CreateTokenRequest{Name: "other-team", Role: "deployer", Projects: []string{"other"}}, &tok); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/apps/live/resources", "/api/v1/apps/live/live/manifest?kind=Secret&name=creds", "/api/v1/apps/live/live/events", "/api/v1/apps/live/logs?kind=Pod&name=" + pod.Name, "/api/v1/apps/live/manifests"} {
		if b := e.getRaw(tok.Token, path, http.StatusForbidden); !strings.Contains(string(b), `in project \"default\"`) {
			t.Errorf("GET %s as a deployer of project other: %s", path, b)
		}
	}
	e.postRaw(tok.Token, "/api/v1/apps/live/actions", api.ActionRequest{Action: api.ActionDelete, Object: api.ObjectRef{Kind: "Pod", Name: pod.Name}}, http.StatusForbidden)
	// The app's own objects: delete a pod, restart, run the CronJob.
	e.cli("app", "action", "live", "delete", "pod/"+pod.Name)
	e.waitGone("pod "+pod.Name, func(ctx context.Context) error {
		_, err := e.clients["alpha"].CoreV1().Pods("live").Get(ctx, pod.Name, metav1.GetOptions{})
		return err
	})
	if out := e.cli("app", "action", "live", "restart", "deploy/web"); !strings.Contains(out, "restarted") {
		t.Errorf("restart deploy/web: %s", out)
	}
	e.eventually("web's pod template restarted", func() error {
		d, err := e.clients["alpha"].AppsV1().Deployments("live").Get(e.t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
			return fmt.Errorf("template annotations %v", d.Spec.Template.Annotations)
		}
		return nil
	})
	e.cli("app", "action", "live", "run-cronjob", "cronjob/tick")
	e.eventually("a Job of CronJob tick", func() error {
		jobs, err := e.clients["alpha"].BatchV1().Jobs("live").List(e.t.Context(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, j := range jobs.Items {
			if len(j.OwnerReferences) == 1 && j.OwnerReferences[0].Name == "tick" && strings.HasPrefix(j.Name, "tick-manual-") {
				return nil
			}
		}
		return fmt.Errorf("%d jobs, none made from tick", len(jobs.Items))
	})
	var audit api.ListResponse[api.AuditEntry]
	if err := e.hub.DoJSON(e.t.Context(), "GET", "/api/v1/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range audit.Items {
		seen[a.Action] = true
	}
	for _, want := range []string{"app.action.restart", "app.action.delete", "app.action.run"} {
		if !seen[want] {
			t.Errorf("audit has no %s: %+v", want, audit.Items)
		}
	}
}

// checkTree wants web's Deployment → ReplicaSet → Pod, the Service's
// EndpointSlice, the Secret and the CronJob, the app's own objects Healthy.
func checkTree(tr api.ResourceTree) error {
	dep, rs, pod, svc, eps := nodeOf(tr, "Deployment", "web"), nodeOf(tr, "ReplicaSet", ""), nodeOf(tr, "Pod", ""), nodeOf(tr, "Service", "web"), nodeOf(tr, "EndpointSlice", "")
	for what, n := range map[string]*api.ResourceNode{"Deployment": dep, "ReplicaSet": rs, "Pod": pod, "Service": svc, "EndpointSlice": eps, "Secret": nodeOf(tr, "Secret", "creds"), "CronJob": nodeOf(tr, "CronJob", "tick")} {
		if n == nil {
			return fmt.Errorf("no %s in %+v", what, tr.Nodes)
		}
	}
	switch {
	case !dep.InApp || dep.Health != "Healthy":
		return fmt.Errorf("deployment %+v: want the app's, Healthy", dep)
	case rs.InApp || len(rs.Parents) != 1 || rs.Parents[0] != dep.UID:
		return fmt.Errorf("replicaset %+v: want owned by the Deployment %s", rs, dep.UID)
	case len(pod.Parents) != 1 || pod.Parents[0] != rs.UID || len(pod.Containers) != 1:
		return fmt.Errorf("pod %+v: want owned by the ReplicaSet %s, one container", pod, rs.UID)
	case len(eps.Parents) != 1 || eps.Parents[0] != svc.UID:
		return fmt.Errorf("endpointslice %+v: want owned by the Service %s", eps, svc.UID)
	}
	return nil
}

func nodeOf(tr api.ResourceTree, kind, name string) *api.ResourceNode {
	for i, n := range tr.Nodes {
		if n.Kind == kind && (name == "" || n.Name == name) {
			return &tr.Nodes[i]
		}
	}
	return nil
}

// liveLogs reads a pod's log through the hub, then follows it while kwok's
// log file grows (a chatty pod) and, meanwhile, the agent's stream
// converges a new commit.
func (e *env) liveLogs(pc *cluster.ProcessCluster, pod string) {
	e.t.Helper()
	appendPodLog(e.t, pc.PodLogFile(), "hello from the pod")
	e.eventually("the pod's log through the hub", func() error {
		b, code, err := e.get(e.hub.Token, "/api/v1/apps/live/logs?kind=Pod&name="+url.QueryEscape(pod))
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(string(b), "hello from the pod") {
			return fmt.Errorf("HTTP %d: %s", code, b)
		}
		return nil
	})
	if out := e.cli("logs", "live", "deploy/web", "--tail", "5"); !strings.Contains(out, "hello from the pod") {
		e.t.Errorf("flotilla logs live deploy/web:\n%s", out)
	}

	ctx, cancel := context.WithCancel(e.t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.hub.HTTPURL+"/api/v1/apps/live/logs?follow=true&tail=0&group=apps&kind=Deployment&name=web", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.hub.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(api.LogPodHeader) != pod {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("follow: HTTP %d pod %q: %s", resp.StatusCode, resp.Header.Get(api.LogPodHeader), b)
	}
	var lines atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "chatter ") {
				lines.Add(1)
			}
		}
	}()
	// The pod chatters while a commit converges on the same stream.
	chatDone := make(chan struct{})
	go func() {
		defer close(chatDone)
		for i := 0; ctx.Err() == nil; i++ {
			appendPodLog(e.t, pc.PodLogFile(), fmt.Sprintf("chatter %d %s", i, strings.Repeat("x", 200)))
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	e.eventually("followed lines arrive", func() error {
		if lines.Load() < 100 {
			return fmt.Errorf("%d lines so far", lines.Load())
		}
		return nil
	})
	files := map[string]string{"live/extra.yaml": cmManifest("extra", map[string]string{"k": "v"})}
	rev := e.commit("live: one more object", files)
	e.waitSynced("live", rev, "alpha")
	before := lines.Load()
	e.eventually("the followed log keeps flowing after the commit converged", func() error {
		if lines.Load() <= before {
			return fmt.Errorf("%d lines, no more than %d", lines.Load(), before)
		}
		return nil
	})
	cancel()
	<-chatDone
	<-readDone
}

// appendPodLog appends text as one CRI log line to kwok's log file.
func appendPodLog(t *testing.T, path, text string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), text); err != nil {
		t.Error(err)
	}
}

// get calls the hub's API with token and returns the body and status.
func (e *env) get(token, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(e.t.Context(), "GET", e.hub.HTTPURL+path, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// getRaw wants status from GET path and returns the body.
func (e *env) getRaw(token, path string, status int) []byte {
	e.t.Helper()
	b, code, err := e.get(token, path)
	if err != nil {
		e.t.Fatal(err)
	}
	if code != status {
		e.t.Fatalf("GET %s: HTTP %d, want %d: %s", path, code, status, b)
	}
	return b
}

// postRaw wants status from POST path with in as JSON and returns the body.
func (e *env) postRaw(token, path string, in any, status int) []byte {
	e.t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), "POST", e.hub.HTTPURL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		e.t.Fatalf("POST %s: HTTP %d, want %d: %s", path, resp.StatusCode, status, b)
	}
	return b
}
