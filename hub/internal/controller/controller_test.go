//go:build !unit

package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/render/engines"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// world is a controller wired to a real git server over HTTP, a real store
// and a fleet, with definitions in a local folder.
type world struct {
	t       testing.TB
	srv     *gitserver.Server
	repo    *gitserver.Repo
	appsDir string
	st      *store.Bolt
	git     *gitsource.Manager
	r       *render.Renderer
	fl      *fleet.Fleet
	c       *Controller
	polled  chan struct{}
}

func newWorld(t testing.TB, clusters map[string]map[string]string) *world {
	t.Helper()
	dir := t.TempDir()
	srv, repo := gitserver.StartT(t, dir, "config")
	st, err := store.Open(filepath.Join(dir, "hub.db"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for name, labels := range clusters {
		if err := st.CreateCluster(t.Context(), store.Cluster{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{t: t, srv: srv, repo: repo, appsDir: filepath.Join(dir, "apps"), st: st}
	if err := os.MkdirAll(w.appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.polled = make(chan struct{}, 16)
	w.git = gitsource.New(gitsource.Options{Dir: filepath.Join(dir, "state"), PollInterval: time.Hour, AllowInsecureHTTP: true, OnPoll: func(string, time.Duration, error) {
		select {
		case w.polled <- struct{}{}:
		default:
		}
	}}, hclog.NewNullLogger())
	w.r = render.New(render.Options{Engines: engines.New()})
	w.fl = fleet.New()
	w.c = New(Options{AppsDir: w.appsDir, Resync: time.Hour}, w.git, w.r, w.fl, st, hclog.NewNullLogger())
	return w
}

func (w *world) push(files map[string]string) string {
	w.t.Helper()
	m := map[string][]byte{}
	for k, v := range files {
		m[k] = []byte(v)
		if v == "" {
			m[k] = nil
		}
	}
	if err := w.repo.Write(m); err != nil {
		w.t.Fatal(err)
	}
	rev, err := w.repo.CommitAndPush("change")
	if err != nil {
		w.t.Fatal(err)
	}
	return rev
}

func (w *world) app(name, yaml string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.appsDir, name+".yaml"), []byte(yaml), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) target(app, cluster string) TargetState {
	w.t.Helper()
	for _, a := range w.c.Snapshot().Apps {
		if a.Name != app {
			continue
		}
		for _, t := range a.Targets {
			if t.Cluster == cluster {
				return t
			}
		}
	}
	w.t.Fatalf("app %s does not target %s", app, cluster)
	return TargetState{}
}

func appYAML(repo, path, selector string) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination:
    namespace: web
    clusterSelector: {matchLabels: {%s}}
  syncPolicy: {automated: {prune: true, selfHeal: true}}
`, repo, path, selector)
}

const cmV1 = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: '1'}\n"
const cmV2 = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: '2'}\n"

// A push is invisible until the repo is refreshed (what a webhook does);
// then exactly the clusters whose bundle changed get a new digest.
func TestRefreshPicksUpPush(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}, "b": {"env": "prod"}})
	w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("web", appYAML(w.repo.URL, "web", "env: prod"))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	d1 := w.target("web", "a").Digest
	if d1 == "" || d1 != w.target("web", "b").Digest {
		t.Fatalf("digests after first reconcile: a=%q b=%q", d1, w.target("web", "b").Digest)
	}
	rev2 := w.push(map[string]string{"web/cm.yaml": cmV2})
	w.c.ReconcileNow(ctx)
	if got := w.target("web", "a").Digest; got != d1 {
		t.Fatalf("digest changed without a refresh: %s", got)
	}
	pollOnce(t, w, w.repo.URL+"/") // webhooks name the repo in other spellings
	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	if ts.Digest == d1 || ts.Revision != rev2 {
		t.Fatalf("after refresh: digest %s (old %s), revision %s want %s", ts.Digest, d1, ts.Revision, rev2)
	}
	got := w.fl.DesiredOf("b")["web"]
	if got.GetDigest() != ts.Digest {
		t.Fatalf("fleet desired for b: %s, want %s", got.GetDigest(), ts.Digest)
	}
}

// A render error becomes a condition naming the file, and the cluster keeps
// its last good bundle; an unreachable repo does the same.
func TestErrorsKeepLastGood(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("web", appYAML(w.repo.URL, "web", "env: prod"))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	good := w.target("web", "a").Digest

	w.push(map[string]string{"web/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"})
	pollOnce(t, w, w.repo.URL)
	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	if !strings.Contains(ts.Error, "broken.yaml") {
		t.Fatalf("error %q does not name the file", ts.Error)
	}
	if ts.Digest != good || w.fl.DesiredOf("a")["web"].GetDigest() != good {
		t.Fatalf("last good bundle not kept: %s vs %s", ts.Digest, good)
	}

	// The git server goes away: a condition, and still the last good bundle.
	_ = w.srv.Close()
	pollOnce(t, w, w.repo.URL)
	w.c.ReconcileNow(ctx)
	ts = w.target("web", "a")
	if ts.Error == "" || w.fl.DesiredOf("a")["web"].GetDigest() != good {
		t.Fatalf("unreachable repo: error %q, desired %s, want last good %s", ts.Error, w.fl.DesiredOf("a")["web"].GetDigest(), good)
	}
}

// pollOnce runs the git manager until it has polled once after a refresh
// of url (what the webhook handler does).
func pollOnce(t testing.TB, w *world, url string) {
	t.Helper()
	for len(w.polled) > 0 {
		<-w.polled
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = w.git.Run(ctx); close(done) }()
	if !w.git.Refresh(url) {
		t.Fatalf("refresh %s: repo not tracked", url)
	}
	select {
	case <-w.polled:
	case <-time.After(30 * time.Second):
		t.Fatal("git manager did not poll")
	}
	cancel()
	<-done
}

// 1,000 clusters with the same inputs cost one render, and a commit that
// does not touch the app's path does not render again.
func TestOneRenderForManyClusters(t *testing.T) {
	clusters := map[string]map[string]string{}
	for i := range 1000 {
		clusters[fmt.Sprintf("c%04d", i)] = map[string]string{"env": "prod"}
	}
	w := newWorld(t, clusters)
	w.push(map[string]string{"web/cm.yaml": cmV1, "other/x.yaml": cmV1})
	w.app("web", appYAML(w.repo.URL, "web", "env: prod"))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	if got := w.r.Stats().Renders; got != 1 {
		t.Fatalf("renders for 1,000 clusters: %d, want 1", got)
	}
	if n := len(w.c.Snapshot().Apps[0].Targets); n != 1000 {
		t.Fatalf("targets: %d", n)
	}
	w.push(map[string]string{"other/x.yaml": cmV2})
	pollOnce(t, w, w.repo.URL)
	w.c.ReconcileNow(ctx)
	if got := w.r.Stats().Renders; got != 1 {
		t.Fatalf("renders after an unrelated commit: %d, want still 1", got)
	}
}

// Cluster labels declared in git (kind: Cluster) select apps.
func TestClusterLabelsFromGit(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": nil, "b": nil})
	w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("web", appYAML(w.repo.URL, "web", "tier: edge"))
	w.app("clusters", "apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: b\n  labels: {tier: edge}\n")
	snap := w.c.ReconcileNow(t.Context())
	if len(snap.Apps) != 1 || len(snap.Apps[0].Targets) != 1 || snap.Apps[0].Targets[0].Cluster != "b" {
		t.Fatalf("targets: %+v", snap.Apps)
	}
}

// A rollback pin holds its revision, without auto-sync, across a hub
// restart, until it is removed.
func TestPinSurvivesRestart(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	rev1 := w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("web", appYAML(w.repo.URL, "web", "env: prod"))
	w.push(map[string]string{"web/cm.yaml": cmV2})
	ctx := t.Context()
	if err := w.c.Pin(ctx, "web", "a", rev1); err != nil {
		t.Fatal(err)
	}
	// A new controller on the same store, as after a restart.
	c2 := New(Options{AppsDir: w.appsDir, Resync: time.Hour}, w.git, w.r, fleet.New(), w.st, hclog.NewNullLogger())
	c2.ReconcileNow(ctx)
	ts := c2.Snapshot().Apps[0].Targets[0]
	if ts.Pinned != rev1 || ts.Revision != rev1 {
		t.Fatalf("after restart: pinned %q revision %q, want %s", ts.Pinned, ts.Revision, rev1)
	}
	b := c2.fleet.DesiredOf("a")["web"]
	if b.GetSyncPolicy().GetAutomated() || b.GetSyncPolicy().GetSelfHeal() {
		t.Fatal("a pinned bundle keeps auto-sync")
	}
	if err := c2.Pin(ctx, "web", "", ""); err != nil {
		t.Fatal(err)
	}
	c2.ReconcileNow(ctx)
	if ts := c2.Snapshot().Apps[0].Targets[0]; ts.Pinned != "" || ts.Revision == rev1 {
		t.Fatalf("after unpin: pinned %q revision %q", ts.Pinned, ts.Revision)
	}
}
