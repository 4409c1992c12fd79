package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// renderBinary returns the flotilla-render binary workers run:
// --render-worker-binary, else flotilla-render next to this executable.
func renderBinary(o Options) (string, error) {
	bin := o.RenderWorkerBinary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("render workers: %w", err)
		}
		bin = filepath.Join(filepath.Dir(exe), "flotilla-render")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("render workers: the flotilla-render binary: %w (install it next to flotilla-hub, or set --render-worker-binary)", err)
	}
	return bin, nil
}

// startRenderWorkers returns the pool of render worker processes, after
// starting one to check that workers run and logging how they are
// confined. Workers may read the git checkouts and the charts fetched from
// Helm repositories only (where Landlock is available): not the store,
// the CA or the tokens.
func startRenderWorkers(ctx context.Context, o Options, bin string, log hclog.Logger) (*renderproc.Pool, error) {
	ro := o.Render
	ro.Command = []string{bin, renderproc.WorkerArg}
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
		return nil, fmt.Errorf("render workers (%s): %w", bin, err)
	}
	log.Info("render workers ready", "binary", bin, "network_namespace", c.Namespaces, "landlock_abi", c.Landlock,
		"timeout", ro.Timeout, "cpu", ro.CPU, "memory", ro.Memory.String(), "workers", ro.Workers)
	return pool, nil
}

// chartWorkers is the pool of chart worker processes: flotilla-render
// fetching charts from Helm repositories. They reach the network and
// write the chart cache, so they run without the render workers'
// namespaces and Landlock; each request to a repository has its deadline
// and size limit (cfg), a worker's whole request at most chartWorkerTime
// of them, and the render workers' CPU and memory limits. They start on
// demand and exit when idle.
func chartWorkers(o Options, bin string, fetchTimeout time.Duration, log hclog.Logger) *renderproc.Pool {
	d := renderproc.DefaultOptions()
	env := []string{}
	for _, k := range []string{"SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return renderproc.New(renderproc.Options{
		Limits: renderproc.Limits{
			Timeout:   chartWorkerTime * fetchTimeout,
			CPU:       o.Render.CPU,
			Memory:    o.Render.Memory,
			MaxOutput: resource.MustParse("1Mi"),
			Files:     d.Files,
		},
		Workers:      max(o.Render.Workers, 4),
		IdleTimeout:  o.Render.IdleTimeout,
		Command:      []string{bin, renderproc.ChartWorkerArg},
		Env:          env,
		NoNamespaces: true,
	}, log)
}

// chartWorkerTime bounds a chart worker's request, in --git-fetch-timeout
// units: a chart, its index and its dependencies' indexes and charts are
// several requests.
const chartWorkerTime = 10

// chartsDir holds the charts fetched from Helm repositories and OCI
// registries (archives and expanded trees, by digest).
func chartsDir(o Options) string { return filepath.Join(o.StateDir, "charts") }
