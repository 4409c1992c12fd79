package status

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestViewsPageWalksViews: walking ViewsPage page by page, with the apps
// out of order in the snapshot, gives exactly Views, reported statuses
// included, and the last page says no app is left.
func TestViewsPageWalksViews(t *testing.T) {
	fl := fleet.New()
	snap := &controller.Snapshot{}
	for _, i := range []int{7, 3, 9, 1, 5, 2, 8, 4, 6} {
		name := fmt.Sprintf("app-%d", i)
		snap.Apps = append(snap.Apps, controller.AppState{Name: name, Targets: []controller.TargetState{
			{Cluster: "c1", Digest: "d" + name}, {Cluster: "c2", Digest: "d" + name},
		}})
		fl.Report("c1", &apiv1alpha1.AppStatus{App: name, Digest: "d" + name, Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED})
	}
	want := Views(snap, fl, false)
	for _, limit := range []int{1, 2, 4, 9, 100} {
		var got []api.AppView
		after, pages := "", 0
		for {
			page, next := ViewsPage(snap, fl, after, limit, false)
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d views", limit, len(page))
			}
			got = append(got, page...)
			pages++
			if next == "" {
				break
			}
			if next != page[len(page)-1].Name {
				t.Fatalf("limit %d: next %q, last of the page %q", limit, next, page[len(page)-1].Name)
			}
			after = next
		}
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("limit %d: pages differ from Views (-want +got):\n%s", limit, d)
		}
	}
	if page, next := ViewsPage(snap, fl, "app-9", 10, false); len(page) != 0 || next != "" {
		t.Errorf("after the last app: %d views, next %q", len(page), next)
	}
}
