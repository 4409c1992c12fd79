package status

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func withOp(digest string, phase apiv1alpha1.Operation_Phase, finished *time.Time) *apiv1alpha1.AppStatus {
	op := &apiv1alpha1.Operation{Phase: phase, Revision: "rev-" + digest, Digest: digest, Message: "applied", InitiatedBy: "alice", StartedAt: timestamppb.New(t0)}
	if finished != nil {
		op.FinishedAt = timestamppb.New(*finished)
	}
	return &apiv1alpha1.AppStatus{App: "web", Digest: digest, LastOperation: op}
}

func TestFinished(t *testing.T) {
	t.Parallel()
	done, failed, running := apiv1alpha1.Operation_PHASE_SUCCEEDED, apiv1alpha1.Operation_PHASE_FAILED, apiv1alpha1.Operation_PHASE_RUNNING
	tests := []struct {
		name      string
		prev, cur *apiv1alpha1.AppStatus
		want      bool
	}{
		{"no operation", nil, &apiv1alpha1.AppStatus{App: "web"}, false},
		{"running", nil, withOp("d1", running, nil), false},
		{"first finished", nil, withOp("d1", done, &t1), true},
		{"was running, now finished", withOp("d1", running, nil), withOp("d1", done, &t1), true},
		{"same operation reported again", withOp("d1", done, &t1), withOp("d1", done, &t1), false},
		{"another finish time", withOp("d1", done, &t0), withOp("d1", failed, &t1), true},
		{"another digest, same time", withOp("d1", done, &t1), withOp("d2", done, &t1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Finished(tc.prev, tc.cur); got != tc.want {
				t.Errorf("Finished = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestObserveRecordsHistory: finished operations reported by an agent end
// up in the store's history once each, with their result.
func TestObserveRecordsHistory(t *testing.T) {
	t.Parallel()
	st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := New(Deps{Store: st})
	ctx, cancel := context.WithCancel(context.Background())
	running := withOp("d1", apiv1alpha1.Operation_PHASE_RUNNING, nil)
	ok := withOp("d1", apiv1alpha1.Operation_PHASE_SUCCEEDED, &t1)
	failed := withOp("d2", apiv1alpha1.Operation_PHASE_FAILED, &t1)
	s.Observe(ctx, "prod", nil, running)
	s.Observe(ctx, "prod", running, ok)
	s.Observe(ctx, "prod", ok, ok)
	cancel() // a write in flight outlives the caller's context
	s.Observe(ctx, "prod", ok, failed)
	s.Wait()

	es, _, err := st.ListHistory(context.Background(), "web", "prod", store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Digest, Revision, Result, InitiatedBy string }
	var got []row
	for _, e := range es {
		got = append(got, row{e.Digest, e.Revision, e.Result, e.InitiatedBy})
	}
	// The writes run concurrently: their order in the history is theirs.
	want := []row{{"d1", "rev-d1", "Succeeded", "alice"}, {"d2", "rev-d2", "Failed", "alice"}}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b row) bool { return a.Digest < b.Digest })); diff != "" {
		t.Errorf("history -want +got:\n%s", diff)
	}
}
