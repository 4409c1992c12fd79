package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/flotilla-cd/flotilla/e2e/harness"
)

// binDir holds flotilla-hub, flotilla and flotilla-agent for the suite:
// $FLOTILLA_E2E_BIN_DIR (the Makefile passes bin/), else built into a
// temporary folder once.
var binDir string

// controlPlaneBins holds etcd, kube-apiserver and the rest (make bins).
var controlPlaneBins string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	controlPlaneBins = os.Getenv("FLOTILLA_CONTROL_PLANE_BIN_DIR")
	if controlPlaneBins == "" {
		controlPlaneBins = filepath.Join(root, "bin")
	}
	binDir = os.Getenv("FLOTILLA_E2E_BIN_DIR")
	if binDir == "" {
		dir, err := os.MkdirTemp("", "flotilla-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := harness.BuildBinaries(context.Background(), root, dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
	}
	return m.Run()
}
