package controller

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// resyncWorld is a controller on a bolt store and a definitions folder,
// with a clock the test moves; no git and no render is needed (no app has
// a source), so it runs in the unit tier.
type resyncWorld struct {
	t    *testing.T
	c    *Controller
	st   *store.Bolt
	dir  string
	now  time.Time
	runs int // full passes run by tick
}

func newResyncWorld(t *testing.T) *resyncWorld {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "hub.db"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &resyncWorld{t: t, st: st, dir: filepath.Join(dir, "apps"), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := st.CreateCluster(t.Context(), store.Cluster{Name: name, Labels: map[string]string{"env": "dev"}}); err != nil {
			t.Fatal(err)
		}
	}
	w.file("clusters.yaml", "apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\nspec: {labels: {tier: one}}\n")
	git := gitsource.New(gitsource.Options{Dir: filepath.Join(dir, "git"), PollInterval: time.Hour}, hclog.NewNullLogger())
	w.c = New(Options{AppsDir: w.dir, Resync: 30 * time.Second, Now: func() time.Time { return w.now }}, git, nil, fleet.New(), st, hclog.NewNullLogger())
	w.c.ReconcileNow(t.Context())
	return w
}

func (w *resyncWorld) file(name, content string) {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, name), []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// tick is what Run does at a resync: a pass unless it can be skipped.
func (w *resyncWorld) tick() (skipped bool) {
	w.now = w.now.Add(w.c.opts.Resync)
	if w.c.resyncSkippable(w.t.Context()) {
		return true
	}
	w.runs++
	w.c.reconcile(w.t.Context())
	return false
}

func (w *resyncWorld) labels(cluster string) map[string]string {
	for _, cs := range w.c.Snapshot().Clusters {
		if cs.Name == cluster {
			return cs.Labels
		}
	}
	w.t.Fatalf("cluster %s not in the snapshot", cluster)
	return nil
}

func TestResyncSkippedWhenNothingChanged(t *testing.T) {
	w := newResyncWorld(t)
	for i := range 3 {
		if !w.tick() {
			t.Fatalf("resync %d ran a pass with no input changed", i)
		}
	}
}

// A cluster relabelled in the store with no event reaching the controller
// (another process wrote it, a watch event was lost): the resync after
// skipped ones still catches it.
func TestResyncCatchesStoreChangeWithoutEvent(t *testing.T) {
	w := newResyncWorld(t)
	if !w.tick() {
		t.Fatal("first resync not skipped")
	}
	if err := w.st.UpdateCluster(t.Context(), "b", func(c *store.Cluster) error {
		c.Labels = map[string]string{"env": "prod"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if w.tick() {
		t.Fatal("resync skipped after a cluster's labels changed in the store")
	}
	if got := w.labels("b")["env"]; got != "prod" {
		t.Fatalf("cluster b env = %q after the resync, want prod", got)
	}
	if !w.tick() {
		t.Fatal("resync after the change was taken not skipped")
	}
	// A new cluster, and a removed one.
	if err := w.st.CreateCluster(t.Context(), store.Cluster{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if w.tick() {
		t.Fatal("resync skipped after a cluster was added to the store")
	}
	if err := w.st.DeleteCluster(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if w.tick() {
		t.Fatal("resync skipped after a cluster was removed from the store")
	}
	if n := len(w.c.Snapshot().Clusters); n != 2 {
		t.Fatalf("%d clusters in the snapshot, want 2 (b, c)", n)
	}
}

// An edit in the definitions folder has no event: the resync reads the
// folder again.
func TestResyncCatchesAppsDirEdit(t *testing.T) {
	w := newResyncWorld(t)
	if !w.tick() {
		t.Fatal("first resync not skipped")
	}
	w.file("clusters.yaml", "apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\nspec: {labels: {tier: two}}\n")
	if w.tick() {
		t.Fatal("resync skipped after a definition file changed")
	}
	if got := w.labels("a")["tier"]; got != "two" {
		t.Fatalf("cluster a tier = %q, want two", got)
	}
	w.file("more.yaml", "")
	if w.tick() {
		t.Fatal("resync skipped after a definition file was added")
	}
}

func TestResyncRunsAfterTriggerAndPeriodically(t *testing.T) {
	w := newResyncWorld(t)
	w.c.Trigger() // e.g. a pin or a capability changed here
	if w.tick() {
		t.Fatal("resync skipped after a Trigger")
	}
	skipped := 0
	for range fullResyncEvery {
		if w.tick() {
			skipped++
		}
	}
	if skipped != fullResyncEvery-1 {
		t.Fatalf("%d of %d resyncs skipped, want all but one full pass", skipped, fullResyncEvery)
	}
}

// A pass that did not finish cleanly (here: the folder cannot be read) is
// not a base to skip from.
func TestResyncNotSkippedAfterFailedPass(t *testing.T) {
	w := newResyncWorld(t)
	if err := os.Rename(w.dir, w.dir+".gone"); err != nil {
		t.Fatal(err)
	}
	if w.tick() {
		t.Fatal("resync skipped with the definitions folder gone")
	}
	if w.c.Snapshot().Error == "" {
		t.Fatal("no error in the snapshot with the definitions folder gone")
	}
	if err := os.Rename(w.dir+".gone", w.dir); err != nil {
		t.Fatal(err)
	}
	if w.tick() {
		t.Fatal("resync skipped after a failed pass")
	}
	if !w.tick() {
		t.Fatal("resync not skipped after a clean pass")
	}
}

// A sync window opening or closing is a change of input by the clock.
func TestResyncNotSkippedAtWindowChange(t *testing.T) {
	w := newResyncWorld(t)
	w.c.mu.Lock()
	w.c.resyncKey.windows = w.now.Add(45 * time.Second)
	w.c.mu.Unlock()
	if !w.tick() { // +30 s: before the window change
		t.Fatal("resync before the window change not skipped")
	}
	if w.tick() { // +60 s: after it
		t.Fatal("resync after a sync window change skipped")
	}
}
