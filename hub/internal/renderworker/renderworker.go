// Package renderworker is the main loop of the flotilla-render binary: the
// worker processes the hub starts to render Helm charts, kustomizations and
// Jsonnet (renderproc.WorkerArg) and to fetch charts from Helm repositories
// (renderproc.ChartWorkerArg). Everything that links Helm, Kustomize and an
// OCI client runs there, so that the hub binary does not map it.
package renderworker

import (
	"context"
	"fmt"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/render/engines"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// IsWorker reports whether args (without the program name) start a worker.
func IsWorker(args []string) bool {
	return len(args) > 0 && (args[0] == renderproc.WorkerArg || args[0] == renderproc.ChartWorkerArg)
}

// Run serves as the worker args ask for, until the hub closes its stdin.
func Run(ctx context.Context, args []string) error {
	switch {
	case len(args) > 0 && args[0] == renderproc.WorkerArg:
		return render.ServeWorker(ctx, engines.New())
	case len(args) > 0 && args[0] == renderproc.ChartWorkerArg:
		return renderproc.Serve(ctx, chartsource.Serve)
	}
	return fmt.Errorf("flotilla-render is started by flotilla-hub, as its render and chart workers (first argument %s or %s)", renderproc.WorkerArg, renderproc.ChartWorkerArg)
}
