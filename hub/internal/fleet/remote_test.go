package fleet

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestApplyRemote: statuses another hub stored replace and remove apps of
// a cluster whose agent is elsewhere, wake the watchers (the event stream),
// and are ignored while the agent is connected here; CloseAll ends every
// session here.
func TestApplyRemote(t *testing.T) {
	f := New()
	ch, stop := f.Watch()
	defer stop()
	apps := func(cluster string) map[string]string {
		out := map[string]string{}
		for app, st := range f.Status()[cluster] {
			out[app] = st.GetRevision()
		}
		return out
	}
	st := func(app, rev string) *apiv1alpha1.AppStatus { return &apiv1alpha1.AppStatus{App: app, Revision: rev} }

	if !f.ApplyRemote("far", []*apiv1alpha1.AppStatus{st("web", "r1"), st("db", "r1")}, nil) {
		t.Fatal("remote statuses of a cluster not connected here were ignored")
	}
	select {
	case <-ch:
	default:
		t.Error("watchers not woken by remote statuses")
	}
	f.ApplyRemote("far", []*apiv1alpha1.AppStatus{st("web", "r2")}, []string{"db"})
	if d := cmp.Diff(map[string]string{"web": "r2"}, apps("far")); d != "" {
		t.Errorf("after replace and remove (-want +got):\n%s", d)
	}

	s := f.Attach("near", nil)
	f.Report("near", st("web", "local"))
	if f.ApplyRemote("near", []*apiv1alpha1.AppStatus{st("web", "stale")}, nil) {
		t.Error("remote statuses applied to a cluster whose agent is connected here")
	}
	if d := cmp.Diff(map[string]string{"web": "local"}, apps("near")); d != "" {
		t.Errorf("connected cluster (-want +got):\n%s", d)
	}
	if !f.HasSession("near") || f.HasSession("far") {
		t.Errorf("HasSession near %v far %v, want true and false", f.HasSession("near"), f.HasSession("far"))
	}
	errLost := errors.New("store lost")
	f.CloseAll(errLost)
	<-s.Context().Done()
	if cause := context.Cause(s.Context()); !errors.Is(cause, errLost) {
		t.Errorf("session ended with %v, want the store-lost cause", cause)
	}
	if f.HasSession("near") || f.ConnectedCount() != 0 {
		t.Error("CloseAll left a session")
	}
}
