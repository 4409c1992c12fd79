//go:build !unit

package controller

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// With an app rendered from git: a clean pass is a base to skip from, and
// a cluster relabelled in the store without an event (after skipped
// resyncs) is still targeted by the next resync.
func TestResyncWithAppsCatchesRelabel(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}, "b": {"env": "dev"}})
	w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("web", appYAML(w.repo.URL, "web", "env: prod"))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	d := w.target("web", "a").Digest
	if d == "" {
		t.Fatal("app not rendered for a")
	}
	for i := range 2 {
		if !w.c.resyncSkippable(ctx) {
			t.Fatalf("resync %d after a clean pass not skippable", i)
		}
	}
	if err := w.st.UpdateCluster(ctx, "b", func(c *store.Cluster) error {
		c.Labels = map[string]string{"env": "prod"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if w.c.resyncSkippable(ctx) {
		t.Fatal("resync skippable after cluster b was relabelled in the store")
	}
	w.c.ReconcileNow(ctx)
	if got := w.target("web", "b").Digest; got != d {
		t.Fatalf("b's digest %q after the resync, want %q", got, d)
	}
	if got := w.fl.DesiredOf("b")["web"].GetDigest(); got != d {
		t.Fatalf("fleet desired for b: %q, want %q", got, d)
	}
	if !w.c.resyncSkippable(ctx) {
		t.Fatal("resync not skippable once the change was taken")
	}
}

// A failed render is retried by the resync (jobs retry a failed result
// after the resync interval): such a pass is never skipped.
func TestResyncNotSkippedWithFailedRender(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.push(map[string]string{"web/cm.yaml": cmV1, "web/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"})
	w.app("web", appYAML(w.repo.URL, "web", "env: prod"))
	w.c.ReconcileNow(t.Context())
	if ts := w.target("web", "a"); !strings.Contains(ts.Error, "broken.yaml") {
		t.Fatalf("error %q does not name the file", ts.Error)
	}
	if w.c.resyncSkippable(t.Context()) {
		t.Fatal("resync skippable with a failed render to retry")
	}
}

// BenchmarkResync is the idle hub's resync at 10,000 clusters (one app
// selecting all, as in the bench's steady-state row): "full" is the pass
// every resync ran before, "skipped" what a resync costs now when nothing
// changed (re-reading the clusters from the store).
func BenchmarkResync(b *testing.B) {
	const clusters = 10000
	labels := map[string]map[string]string{}
	for i := range clusters {
		labels[fmt.Sprintf("c%05d", i)] = map[string]string{"sim": "true"}
	}
	w := newWorld(b, labels)
	w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("web", appYAML(w.repo.URL, "web", "sim: 'true'"))
	ctx := b.Context()
	w.c.ReconcileNow(ctx)
	if w.target("web", "c09999").Digest == "" {
		b.Fatal("app not rendered")
	}
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			w.c.reconcile(ctx)
		}
	})
	b.Run("skipped", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if !w.c.resyncSkippable(ctx) {
				b.Fatal("not skippable")
			}
		}
	})
}
