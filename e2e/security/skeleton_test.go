package security

import "testing"

// TestHarness checks that a hub process starts and serves its API: the
// ground every attack below stands on.
func TestHarness(t *testing.T) {
	h := startHub(t, "")
	if _, err := h.Apps(t.Context()); err != nil {
		t.Fatal(err)
	}
}
