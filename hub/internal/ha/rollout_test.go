//go:build !unit

package ha

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi"
	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/render/engines"
	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	"github.com/flotilla-cd/flotilla/hub/internal/status"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/store/kubestore"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// apiServer starts a kube-apiserver (and etcd) as processes, with the
// store's CRDs, and returns its admin config and a new namespace.
func apiServer(t *testing.T) (*rest.Config, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a kube-apiserver; run without -short")
	}
	ctx := t.Context()
	p := &cluster.ProcessProvider{BinDir: cluster.ControlPlaneBinDir(), Logger: hclog.NewNullLogger(), WorkDir: t.TempDir()}
	c, err := p.Create(ctx, "ha")
	if err != nil {
		if errors.Is(err, cluster.ErrMissingBinaries) && os.Getenv(cluster.EnvSkipMissingBins) == "1" {
			t.Skipf("skipping: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(sctx)
	})
	cfg := c.RESTConfig()
	if err := kubestore.InstallCRDs(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	const ns = "flotilla"
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cfg, ns
}

// hub is one replica as the hub process wires it: its own store client,
// fleet, git mirrors and controller, and a Replica.
type hub struct {
	name   string
	st     *kubestore.Store
	fl     *fleet.Fleet
	git    *gitsource.Manager
	c      *controller.Controller
	r      *Replica
	api    *httptest.Server // the replica's HTTP API
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu     sync.Mutex
	events []string // rollout events seen, "Remote" marked
}

func startHub(t *testing.T, cfg *rest.Config, ns, appsDir, name string, ca *pki.CA) *hub {
	t.Helper()
	log := hclog.NewNullLogger()
	st, err := kubestore.New(cfg, kubestore.Options{Namespace: ns}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &hub{name: name, st: st, fl: fleet.New()}
	h.git = gitsource.New(gitsource.Options{Dir: filepath.Join(t.TempDir(), "git"), PollInterval: time.Hour, AllowInsecureHTTP: true}, log)
	h.c = controller.New(controller.Options{
		AppsDir: appsDir, Resync: time.Hour, FollowRollouts: true,
		OnRolloutEvent: func(_ context.Context, e rollout.Event) {
			h.mu.Lock()
			defer h.mu.Unlock()
			what := fmt.Sprintf("%s %d", e.Type, e.Step)
			if e.Remote {
				what += " (remote)"
			}
			h.events = append(h.events, what)
		},
	}, h.git, render.New(render.Options{Engines: engines.New()}), h.fl, st, log)
	opts := DefaultOptions()
	opts.Identity, opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = name, 2*time.Second, 1500*time.Millisecond, 250*time.Millisecond
	opts.HeartbeatInterval = time.Second
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	agents := agentapi.New(ca, st, h.fl, agentapi.Options{}, log)
	h.r, err = New(opts, Deps{Config: cfg, Store: st, Fleet: h.fl, Controller: h.c, Git: h.git, Agents: agents, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ops := status.New(status.Deps{Store: st, Fleet: h.fl, Controller: h.c, CommandTimeout: 10 * time.Second, Log: log})
	h.api = httptest.NewServer(httpapi.New(httpapi.Deps{Store: st, Fleet: h.fl, Controller: h.c, Git: h.git, Status: ops, TokenTTL: time.Hour, Log: log}))
	t.Cleanup(h.api.Close)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done.Go(func() { _ = h.git.Run(ctx) })
	h.done.Go(func() { _ = h.c.Run(ctx) })
	h.done.Go(func() { _ = h.r.Run(ctx) })
	t.Cleanup(h.stop)
	return h
}

func (h *hub) stop() {
	h.cancel()
	h.done.Wait()
}

func (h *hub) sawEvent(what string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.events, what)
}

// placement is where the replica renders each cluster: the revision's
// name and why it waits.
func (h *hub) placement(revs map[string]string) map[string]string {
	out := map[string]string{}
	for _, as := range h.c.Snapshot().Apps {
		if as.Name != "web" {
			continue
		}
		for _, ts := range as.Targets {
			out[ts.Cluster] = revs[ts.Revision] + " " + ts.Rollout
		}
	}
	return out
}

func (h *hub) digest(cluster string) string {
	for _, as := range h.c.Snapshot().Apps {
		for _, ts := range as.Targets {
			if as.Name == "web" && ts.Cluster == cluster {
				return ts.Digest
			}
		}
	}
	return ""
}

// report records cluster's agent's status as the replica holding its
// stream does: in the store, from where every replica's watch takes it.
func (h *hub) report(t *testing.T, cluster string, health apiv1alpha1.HealthStatus) {
	t.Helper()
	st := &apiv1alpha1.AppStatus{App: "web", Digest: h.digest(cluster), Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: health}
	if err := h.st.PutStatus(t.Context(), cluster, st); err != nil {
		t.Fatal(err)
	}
}

// everywhere waits until cond holds on every replica in hubs.
func everywhere(t *testing.T, hubs []*hub, what string, cond func(h *hub) error) {
	t.Helper()
	err := harness.Eventually(t.Context(), 60*time.Second, 50*time.Millisecond, func() error {
		for _, h := range hubs {
			if err := cond(h); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func placedAs(want map[string]string, revs map[string]string) func(h *hub) error {
	return func(h *hub) error {
		if d := cmp.Diff(want, h.placement(revs)); d != "" {
			return fmt.Errorf("placement (-want +got):\n%s", d)
		}
		return nil
	}
}

const webApp = `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source: {repoURL: %s, targetRevision: main, path: web}
  destination:
    namespace: web
    clusterSelector: {matchExpressions: [{key: wave, operator: Exists}]}
  syncPolicy: {automated: {prune: true}}
  rollout:
    steps:
    - name: canary
      clusterSelector: {matchLabels: {wave: canary}}
      soak: 1s
      gate: {url: "%s/api/v1/query?query=errors", max: 0.05, interval: 200ms}
    - {name: wave1, clusterSelector: {matchLabels: {wave: wave1}}}
    - {name: wave2, clusterSelector: {matchLabels: {wave: wave2}}}
`

func configMap(release string) map[string][]byte {
	return map[string][]byte{"web/cm.yaml": fmt.Appendf(nil, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {release: %s}\n", release)}
}

// TestRolloutAcrossReplicas: three replicas over one real API server
// (kube-apiserver and etcd processes), git over HTTP. The Lease holder
// decides the rollout; every replica renders every cluster by the stored
// state; a pause and a resume made on the other replicas take effect
// there and on the holder; the holder's events reach the others; when the
// holder stops, the next one resumes from the store.
func TestRolloutAcrossReplicas(t *testing.T) {
	cfg, ns := apiServer(t)
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "config")
	appsDir := filepath.Join(dir, "apps")
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	seed, err := kubestore.New(cfg, kubestore.Options{Namespace: ns}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	for name, wave := range map[string]string{"a-canary": "canary", "b-wave1": "wave1", "c-wave2": "wave2"} {
		if err := seed.CreateCluster(ctx, store.Cluster{Name: name, Labels: map[string]string{"wave": wave}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.Write(configMap("v1")); err != nil {
		t.Fatal(err)
	}
	rev1, err := repo.CommitAndPush("v1")
	if err != nil {
		t.Fatal(err)
	}
	// The canary's gate: an HTTP server answering as Prometheus' API.
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767322800,"0.01"]}]}}`)
	}))
	defer prom.Close()
	if err := os.WriteFile(filepath.Join(appsDir, "web.yaml"), fmt.Appendf(nil, webApp, repo.URL, prom.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hubs := []*hub{startHub(t, cfg, ns, appsDir, "r1", ca), startHub(t, cfg, ns, appsDir, "r2", ca), startHub(t, cfg, ns, appsDir, "r3", ca)}
	revs := map[string]string{rev1: "rev1"}
	everywhere(t, hubs, "first revision everywhere", placedAs(map[string]string{"a-canary": "rev1 ", "b-wave1": "rev1 ", "c-wave2": "rev1 "}, revs))

	var leader *hub
	var followers []*hub
	everywhere(t, hubs[:1], "a Lease holder", func(*hub) error {
		leader, followers = nil, nil
		for _, h := range hubs {
			if h.r.Leading() {
				leader = h
			} else {
				followers = append(followers, h)
			}
		}
		if leader == nil {
			return errors.New("no replica holds the Lease")
		}
		return nil
	})
	t.Logf("Lease holder: %s", leader.name)

	if err := repo.Write(configMap("v2")); err != nil {
		t.Fatal(err)
	}
	rev2, err := repo.CommitAndPush("v2")
	if err != nil {
		t.Fatal(err)
	}
	revs[rev2] = "rev2"
	followers[0].git.Refresh(repo.URL)
	followers[0].r.Announce(repo.URL) // as a webhook on one replica does
	everywhere(t, hubs, "the canary reached", placedAs(map[string]string{
		"a-canary": "rev2 ", "b-wave1": "rev1 waiting for step 2 (wave1)", "c-wave2": "rev1 waiting for step 3 (wave2)"}, revs))

	// Paused on a replica that does not decide: every replica sees it.
	if _, err := followers[0].c.Operate(ctx, "web", rollout.Pause, "alice"); err != nil {
		t.Fatal(err)
	}
	everywhere(t, hubs, "paused", func(h *hub) error {
		if ro, ok := h.c.RolloutOf("web"); !ok || !ro.State.Paused {
			return fmt.Errorf("rollout %+v", ro.State)
		}
		return nil
	})
	// The canary's agent (on the other follower) reports Healthy: the
	// holder records it, and reaches nobody while paused.
	followers[1].report(t, "a-canary", apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY)
	everywhere(t, hubs, "canary Healthy while paused", func(h *hub) error {
		ro, ok := h.c.RolloutOf("web")
		if !ok || len(ro.State.Steps) == 0 || ro.State.Steps[0].HealthyAt.IsZero() {
			return fmt.Errorf("rollout %+v", ro.State)
		}
		return nil
	})
	// The holder checked the gate after the soak; every replica shows
	// that check.
	var gate rollout.GateResult
	everywhere(t, hubs, "the gate checked after the soak", func(h *hub) error {
		ro, _ := h.c.RolloutOf("web")
		if ro.Gate == nil || !ro.Gate.OK || len(ro.State.Steps) == 0 || ro.Gate.At.Before(ro.State.Steps[0].HealthyAt.Add(time.Second)) {
			return fmt.Errorf("gate %+v", ro.Gate)
		}
		if h == leader {
			gate = *ro.Gate
		}
		return nil
	})
	everywhere(t, hubs, "the same gate check", func(h *hub) error {
		ro, _ := h.c.RolloutOf("web")
		if g := ro.Gate; g == nil || g.Step != gate.Step || !g.At.Equal(gate.At) || g.OK != gate.OK || g.Detail != gate.Detail {
			return fmt.Errorf("gate %+v, the holder's %+v", ro.Gate, gate)
		}
		return nil
	})
	for _, h := range hubs {
		if ro, _ := h.c.RolloutOf("web"); !ro.State.Paused || ro.State.IsReached("b-wave1") {
			t.Errorf("%s: paused rollout reached wave1 or was resumed: %+v", h.name, ro.State)
		}
		if got := h.placement(revs)["b-wave1"]; got != "rev1 waiting for step 2 (wave1)" {
			t.Errorf("%s renders wave1 at %q while paused", h.name, got)
		}
	}
	if _, err := followers[1].c.Operate(ctx, "web", rollout.Resume, "bob"); err != nil {
		t.Fatal(err)
	}
	everywhere(t, hubs, "wave1 reached after the resume", placedAs(map[string]string{
		"a-canary": "rev2 ", "b-wave1": "rev2 ", "c-wave2": "rev1 waiting for step 3 (wave2)"}, revs))
	everywhere(t, hubs, "events of every replica", func(h *hub) error {
		want := []string{"ClustersReached 2 (remote)", "Paused 1 (remote)", "Resumed 1 (remote)"}
		switch h {
		case leader:
			want = []string{"ClustersReached 2", "Paused 1 (remote)", "Resumed 1 (remote)"}
		case followers[0]:
			want[1] = "Paused 1"
		case followers[1]:
			want[2] = "Resumed 1"
		}
		for _, w := range want {
			if !h.sawEvent(w) {
				return fmt.Errorf("no event %q: %v", w, h.events)
			}
		}
		return nil
	})

	// The holder stops; another takes the Lease and finishes from the
	// stored state.
	leader.stop()
	everywhere(t, followers, "a new Lease holder", func(*hub) error {
		if !followers[0].r.Leading() && !followers[1].r.Leading() {
			return errors.New("no replica holds the Lease")
		}
		return nil
	})
	followers[0].report(t, "b-wave1", apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY)
	everywhere(t, followers, "wave2 reached by the next holder", placedAs(map[string]string{"a-canary": "rev2 ", "b-wave1": "rev2 ", "c-wave2": "rev2 "}, revs))
	followers[1].report(t, "c-wave2", apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY)
	everywhere(t, followers, "completed", func(h *hub) error {
		if ro, ok := h.c.RolloutOf("web"); !ok || ro.State.Phase != rollout.Completed {
			return fmt.Errorf("rollout %s at step %d", ro.State.Phase, ro.State.Step)
		}
		return nil
	})
}

// TestPresenceAcrossReplicas: an agent attached to one replica shows
// connected on the others, with the holder's heartbeat as last seen;
// detached, disconnected everywhere with one last-seen time; a replica
// that stops takes its claims with it.
func TestPresenceAcrossReplicas(t *testing.T) {
	cfg, ns := apiServer(t)
	ctx := t.Context()
	seed, err := kubestore.New(cfg, kubestore.Options{Namespace: ns}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	for _, name := range []string{"x", "y"} {
		if err := seed.CreateCluster(ctx, store.Cluster{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	appsDir := t.TempDir()
	hubs := []*hub{startHub(t, cfg, ns, appsDir, "r1", ca), startHub(t, cfg, ns, appsDir, "r2", ca)}
	// connected is each replica's answer for cluster, as "true"/"false"
	// and whether its last-seen time is set.
	answers := func(cluster string, want bool) func(h *hub) error {
		return func(h *hub) error {
			if ok, seen := h.fl.Connected(cluster); ok != want || (ok && seen.IsZero()) {
				return fmt.Errorf("%s: connected %v last seen %v, want connected %v", cluster, ok, seen, want)
			}
			return nil
		}
	}
	everywhere(t, hubs, "watches synced", func(h *hub) error { return h.r.Ready() })
	sx := hubs[0].fl.Attach("x", nil)
	hubs[1].fl.Attach("y", nil) // held until r2 stops
	everywhere(t, hubs, "x and y connected on both replicas", func(h *hub) error {
		return errors.Join(answers("x", true)(h), answers("y", true)(h))
	})
	sx.Close()
	everywhere(t, hubs, "x disconnected on both replicas", answers("x", false))
	c, err := seed.GetCluster(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectedTo != "" || c.LastSeen.IsZero() {
		t.Errorf("x after its stream ended: connectedTo %q, last seen %v; want none and the time it ended", c.ConnectedTo, c.LastSeen)
	}
	// r2 stops: its heartbeat goes, and with it y's claim.
	hubs[1].stop()
	everywhere(t, hubs[:1], "y disconnected once its replica stopped", answers("y", false))
}
