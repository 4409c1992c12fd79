//go:build !unit

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
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
	bins, cp, cleanup, err := harness.TestBinaries(filepath.Dir(filepath.Dir(file)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	binDir, controlPlaneBins = bins, cp
	return m.Run()
}
