package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTest(t testing.TB) *Bolt {
	t.Helper()
	return openTestOpts(t, Options{})
}

func openTestOpts(t testing.TB, opts Options) *Bolt {
	t.Helper()
	s, err := OpenWithOptions(filepath.Join(t.TempDir(), "state", "hub.db"), hclog.NewNullLogger(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// errIs reports a mismatch between err and the wanted sentinel (nil: no error).
func errIs(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}
