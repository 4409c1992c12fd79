//go:build !unit

package security

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// binDir holds flotilla-hub, flotilla-render, flotilla and flotilla-agent:
// $FLOTILLA_E2E_BIN_DIR (the Makefile passes bin/), else built into a
// temporary folder once.
var binDir string

// controlPlaneBins holds etcd, kube-apiserver and the rest (make bins), for
// the tests that need a real cluster.
var controlPlaneBins string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// make unit: every test here runs hub and agent processes
		// against a control plane.
		fmt.Println("security replays: end-to-end, not run by -short")
		return 0
	}
	_, file, _, _ := runtime.Caller(0)
	bins, cp, cleanup, err := harness.TestBinaries(filepath.Dir(filepath.Dir(filepath.Dir(file))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	binDir, controlPlaneBins = bins, cp
	return m.Run()
}

// gitRepo serves a new bare repository over git's smart-HTTP protocol and
// returns it with its working clone. The server closes when t ends.
func gitRepo(t *testing.T, name string) (*gitserver.Server, *gitserver.Repo) {
	t.Helper()
	srv, err := gitserver.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	repo, err := srv.NewRepo(name, filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return srv, repo
}

// startHub starts a hub process of its own for t, with its state and apps
// folder under t's temporary directory, stopped when t ends. extra flags
// are passed as they are.
func startHub(t *testing.T, appsDir string, extra ...string) *harness.Hub {
	t.Helper()
	dir := t.TempDir()
	if appsDir == "" {
		appsDir = filepath.Join(dir, "apps")
		if err := os.MkdirAll(appsDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h, err := harness.StartHub(t.Context(), binDir, dir, harness.HubOptions{AppsDir: appsDir, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := harness.Eventually(t.Context(), timeout, 100*time.Millisecond, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
