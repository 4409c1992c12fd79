package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// statusEngine is an Engine with apps but no cluster and no workers: only
// what ChangedStatuses reads.
func statusEngine(names ...string) *Engine {
	e := &Engine{log: hclog.NewNullLogger(), notify: newNotifier(time.Hour), apps: map[string]*app{}, tombstones: map[string]tombstone{}}
	for _, n := range names {
		e.apps[n] = e.newApp(n)
	}
	return e
}

func setStatus(e *Engine, name string, sync apiv1alpha1.SyncStatus, msg string) bool {
	a := e.apps[name]
	a.mu.Lock()
	defer a.mu.Unlock()
	changed, _ := a.setStatusLocked(&apiv1alpha1.AppStatus{App: name, Digest: "d1", Sync: sync, Message: msg})
	return changed
}

func appsOf(sts []*apiv1alpha1.AppStatus) []string {
	var out []string
	for _, s := range sts {
		out = append(out, fmt.Sprintf("%s:%s", s.GetApp(), s.GetMessage()))
	}
	return out
}

// ChangedStatuses returns, per caller's seen map, only the statuses
// published since the caller's last call (a republished identical status
// is no change), removed apps' final statuses once, apps that have not
// published yet every time; a fresh seen map gets everything.
func TestChangedStatuses(t *testing.T) {
	e := statusEngine("a", "b", "c")
	const synced = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED
	for _, n := range []string{"a", "b"} {
		setStatus(e, n, synced, "1")
	}
	seen := map[string]uint64{}
	check := func(step string, want ...string) {
		t.Helper()
		got := appsOf(e.ChangedStatuses(seen))
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", step, got, want)
		}
	}
	check("first", "a:1", "b:1", "c:") // c: minimal status, not published yet
	check("nothing changed", "c:")
	setStatus(e, "b", synced, "2")
	if setStatus(e, "a", synced, "1") {
		t.Error("the same status again counted as a change")
	}
	check("b changed", "b:2", "c:")
	setStatus(e, "c", synced, "1")
	check("c published", "c:1")
	check("again nothing")

	// The copies are the caller's: changing one changes nothing inside.
	all := e.ChangedStatuses(map[string]uint64{})
	if got := appsOf(all); !slices.Equal(got, []string{"a:1", "b:2", "c:1"}) {
		t.Errorf("fresh seen: %v", got)
	}
	all[0].Message = "mutated"
	if e.apps["a"].status.GetMessage() != "1" {
		t.Error("a returned status is the engine's own")
	}

	e.forget(e.apps["b"], &apiv1alpha1.AppStatus{App: "b", Removed: true, Message: "gone"})
	check("b removed", "b:gone")
	check("tombstone sent once")
	// Re-created under the same name: its new status is a change.
	e.apps["b"] = e.newApp("b")
	delete(e.tombstones, "b")
	setStatus(e, "b", synced, "1")
	check("b back", "b:1")
}
