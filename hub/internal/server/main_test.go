package server

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/renderworker"
)

// TestMain lets the test binary serve as the hub's render and chart
// workers, as flotilla-render does (tests set --render-worker-binary to
// os.Args[0]).
func TestMain(m *testing.M) {
	if renderworker.IsWorker(os.Args[1:]) {
		if err := renderworker.Run(context.Background(), os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
