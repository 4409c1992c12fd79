package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// startRenderWorkers returns the pool of render worker processes (nil with
// --render-in-process), after starting one to check that workers run and
// logging how they are confined. Workers may read the git checkouts and
// the charts fetched from Helm repositories only (where Landlock is
// available): not the store, the CA or the tokens.
func startRenderWorkers(ctx context.Context, o Options, log hclog.Logger) (*renderproc.Pool, error) {
	if o.Render.Disabled {
		log.Warn("Helm and Kustomize render inside the hub process, without limits (--render-in-process)")
		return nil, nil
	}
	ro := o.Render
	ro.ReadDirs = []string{filepath.Join(o.StateDir, "git", "checkouts"), chartsDir(o)}
	for _, d := range ro.ReadDirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("render workers: %w", err)
		}
	}
	pool := renderproc.New(ro, log)
	c, err := pool.Probe(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("render workers: %w (--render-in-process renders without them)", err)
	}
	log.Info("render workers ready", "network_namespace", c.Namespaces, "landlock_abi", c.Landlock,
		"timeout", ro.Timeout, "cpu", ro.CPU, "memory", ro.Memory.String(), "workers", ro.Workers)
	return pool, nil
}

// chartsDir holds the charts fetched from Helm repositories and OCI
// registries (archives and expanded trees, by digest).
func chartsDir(o Options) string { return filepath.Join(o.StateDir, "charts") }
