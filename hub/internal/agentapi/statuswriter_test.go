package agentapi

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Queued statuses reach the store, the newest per (cluster, app) wins, a
// removal deletes, and whatever is queued when the writer stops is written.
func TestStatusWriter(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	for _, c := range []string{"a", "b"} {
		if err := st.CreateCluster(ctx, store.Cluster{Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	w := newStatusWriter(st, hclog.NewNullLogger())
	// Not running: written at once.
	w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "gone", Digest: "d0"})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.run(runCtx); close(done) }()
	for !w.running.Load() {
		select {
		case <-done:
			t.Fatal("writer stopped")
		default:
		}
	}
	for i := range 200 {
		for _, c := range []string{"a", "b"} {
			w.put(ctx, c, &apiv1alpha1.AppStatus{App: fmt.Sprintf("app%03d", i%100), Digest: fmt.Sprintf("d%d", i)})
		}
	}
	w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "gone", Removed: true})
	cancel()
	<-done
	recs, err := st.ListStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 200 {
		t.Fatalf("%d statuses stored, want 200 (100 apps on 2 clusters, the removed one gone)", len(recs))
	}
	for _, r := range recs {
		var n int
		if _, err := fmt.Sscanf(r.Status.GetApp(), "app%d", &n); err != nil {
			t.Fatalf("app name %q: %v", r.Status.GetApp(), err)
		}
		if want := fmt.Sprintf("d%d", n+100); r.Status.GetDigest() != want {
			t.Fatalf("%s/%s: digest %s, want the newest %s", r.Cluster, r.Status.GetApp(), r.Status.GetDigest(), want)
		}
	}
}
