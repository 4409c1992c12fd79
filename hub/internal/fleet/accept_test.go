package fleet

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestAccepts: a cluster's agent may report the apps of its current
// desired state, of the one before the last change of its apps, and those
// the hub holds a status of; nothing else.
func TestAccepts(t *testing.T) {
	f := New()
	f.Restore("a", []*apiv1alpha1.AppStatus{{App: "restored"}})
	bundle := func(app string) *apiv1alpha1.Bundle { return &apiv1alpha1.Bundle{App: app, Digest: "sha256:" + app} }
	check := func(step string, want map[string]bool) {
		t.Helper()
		got := map[string]bool{}
		for app := range want {
			got[app] = f.Accepts("a", app)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: accepted (-want +got):\n%s", step, d)
		}
	}
	check("before any desired state", map[string]bool{"restored": true, "web": false, "invented": false})

	f.SetAll(map[string]Desired{"a": {"web": bundle("web"), "broken": nil}, "b": {"other": bundle("other")}})
	check("desired", map[string]bool{"web": true, "broken": true, "other": false, "invented": false, "restored": true})

	f.SetAll(map[string]Desired{"a": {"api": bundle("api")}})
	check("after web was removed", map[string]bool{"api": true, "web": true, "broken": true, "invented": false})

	// A resync with the same apps keeps the last change's removals.
	f.SetAll(map[string]Desired{"a": {"api": bundle("api")}})
	check("after a resync", map[string]bool{"api": true, "web": true, "invented": false})

	f.SetAll(map[string]Desired{"a": {}})
	check("after the next change", map[string]bool{"api": true, "web": false, "invented": false})

	f.Report("a", &apiv1alpha1.AppStatus{App: "api"})
	f.SetAll(map[string]Desired{"a": {"x": bundle("x")}})
	check("a status held", map[string]bool{"api": true, "x": true})
	f.Forget("a")
	check("forgotten", map[string]bool{"api": false, "x": true})
}
