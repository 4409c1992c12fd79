package server

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/render/engines"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// TestMain lets the test binary serve as the hub's render worker, as the
// hub binary does (Run starts workers from os.Executable).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == renderproc.WorkerArg {
		if err := render.ServeWorker(context.Background(), engines.New()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
