package engine

import (
	"testing"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestRulesKey: an object's hash changes with the bundle's ignore rules, so
// that a live state found equal under old rules is checked again.
func TestRulesKey(t *testing.T) {
	replicas := []*apiv1alpha1.IgnoreDifference{{Group: "apps", Kind: "Deployment", JsonPointers: []string{"/spec/replicas"}}}
	same := []*apiv1alpha1.IgnoreDifference{{Group: "apps", Kind: "Deployment", JsonPointers: []string{"/spec/replicas"}}}
	image := []*apiv1alpha1.IgnoreDifference{{Group: "apps", Kind: "Deployment", JsonPointers: []string{"/spec/template/spec/containers/0/image"}}}
	if got := rulesKey(nil); got != "" {
		t.Errorf("rulesKey(nil) = %q, want empty (hashes stored without rules stay valid)", got)
	}
	if rulesKey(replicas) == "" || rulesKey(replicas) != rulesKey(same) {
		t.Errorf("equal rules: %q and %q", rulesKey(replicas), rulesKey(same))
	}
	if rulesKey(replicas) == rulesKey(image) {
		t.Errorf("different rules share the key %q", rulesKey(replicas))
	}
}
