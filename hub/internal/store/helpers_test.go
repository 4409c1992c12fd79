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

// backend is one Store implementation the contract tests run against.
type backend struct {
	name string
	// open returns a new, empty store, and a function that opens the same
	// state again after the first store was closed.
	open func(t testing.TB, opts Options) (Store, func() Store)
}

var (
	boltBackend = backend{name: "bbolt", open: func(t testing.TB, opts Options) (Store, func() Store) {
		path := filepath.Join(t.TempDir(), "state", "hub.db")
		open := func() Store {
			s, err := OpenWithOptions(path, hclog.NewNullLogger(), opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(), open
	}}
)

// backends are the Store implementations the contract tests run against:
// bbolt always, the Kubernetes store outside the unit tier (kubebackend_test.go).
var backends = []backend{boltBackend}

// eachBackend runs fn once per Store implementation, as subtests.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// eachStore runs fn with a new, empty store of each implementation.
func eachStore(t *testing.T, fn func(t *testing.T, s Store)) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, Options{})
		fn(t, s)
	})
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

// AddBackend adds a Store implementation the contract tests run against:
// kubebackend_test.go (package store_test, which may import the
// Kubernetes store) adds it outside the unit tier.
func AddBackend(name string, open func(t testing.TB, historyLimit int) (Store, func() Store)) {
	backends = append(backends, backend{name: name, open: func(t testing.TB, opts Options) (Store, func() Store) {
		return open(t, opts.HistoryLimit)
	}})
}

// backendNamed returns the contract tests' backend called name.
func backendNamed(t *testing.T, name string) backend {
	t.Helper()
	for _, b := range backends {
		if b.name == name {
			return b
		}
	}
	t.Fatalf("no %s backend in this test binary", name)
	return backend{}
}
