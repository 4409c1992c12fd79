// Command bench runs the Flotilla benchmarks against the design's
// performance goals with real processes and writes the result table, method
// and machine to a markdown file (`make bench` writes docs/benchmarks.md).
// --only runs a subset of the phases.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/e2e/cmd/bench/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	c := bench.Config{}
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	fs.StringVar(&c.BinDir, "bin-dir", "bin", "folder with flotilla-hub, flotilla-render, flotilla, flotilla-agent and the control-plane binaries")
	fs.StringVar(&c.Out, "out", "", "markdown file to write (empty: print only)")
	fs.StringSliceVar(&c.Only, "only", nil, fmt.Sprintf("phases to run (default all): %v", bench.Phases))
	fs.StringVar(&c.WorkDir, "work-dir", "", "folder for every process's files (default: a temp folder)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work folder")
	fs.IntVar(&c.Commits, "commits", 20, "commits per webhook latency row")
	fs.IntVar(&c.Clusters, "clusters", 10, "real clusters of the multi-cluster row")
	fs.IntVar(&c.PollCommits, "poll-commits", 5, "commits of the polling row")
	fs.DurationVar(&c.PollInterval, "poll-interval", 5*time.Second, "hub poll interval of the polling row")
	fs.IntVar(&c.Apps, "apps", 100, "apps of the new-apps, memory and disaster-recovery rows")
	fs.IntVar(&c.HealRepeats, "heal-repeats", 20, "self-heal repetitions on one Deployment")
	fs.IntVar(&c.Objects, "objects", 1000, "objects of the apply rows")
	fs.IntSliceVar(&c.Fanout, "fanout", []int{100, 1000, 10000}, "simulated agent counts, ascending")
	fs.IntSliceVar(&c.FanCommits, "fanout-commits", []int{20, 20, 5}, "commits per fan-out size")
	fs.DurationVar(&c.IdleWindow, "idle-window", time.Minute, "hub CPU window with the largest fan-out connected and idle")
	fs.IntVar(&c.FleetAgents, "fleet-agents", 500, "simulated agents of the fleet-scale rows")
	fs.IntSliceVar(&c.FleetApps, "fleet-apps", []int{10000, 50000}, "apps of the fleet-scale rows, ascending")
	fs.IntVar(&c.BreakdownCommits, "breakdown-commits", 20, "commits of the stage-by-stage split of commit → Synced (1 cluster)")
	fs.IntVar(&c.BulkApps, "bulk-apps", 1000, "new apps on one real (full) cluster")
	fs.IntVar(&c.HookCommits, "hook-commits", 10, "commits per app of the hooks phase (with and without hooks)")
	fs.IntVar(&c.ChartCommits, "chart-commits", 10, "samples of each kind (new chart version, values only) of the charts phase")
	fs.IntVar(&c.HAAgents, "ha-agents", 1000, "simulated agents of the HA failover and commit rows (three hub replicas)")
	fs.IntVar(&c.HAKills, "ha-kills", 5, "kill -9 of the busiest hub replica, each followed by its restart")
	fs.IntVar(&c.HACommits, "ha-commits", 10, "commits through the HA replicas and through one hub")
	fs.IntVar(&c.HAIdleAgents, "ha-idle-agents", 10000, "simulated agents over the HA replicas while API server writes are counted")
	fs.BoolVar(&c.HAWritesOnly, "ha-writes-only", false, "ha phase: measure only the API server writes row (no one-hub comparison, commits or kills)")
	fs.DurationVar(&c.HAIdleWindow, "ha-idle-window", time.Minute, "window of the API server write count at steady state")
	fs.IntVar(&c.PerSimProc, "agents-per-process", 2500, "simulated agents per agentsim process")
	fs.StringVar(&c.Kubectl, "kubectl", "", "kubectl binary for the apply comparison (default: the one make bins builds into --bin-dir)")
	fs.BoolVar(&c.Profile, "profile", true, "build the hub and agent with a profiling overlay and keep CPU/heap profiles of missed rows")
	fs.StringVar(&c.AgentsimBin, "agentsim", "", "agentsim binary (default: built from ./e2e/cmd/agentsim)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(c.FanCommits) != len(c.Fanout) {
		return fmt.Errorf("--fanout-commits needs one count per --fanout size")
	}
	bin, err := filepath.Abs(c.BinDir)
	if err != nil {
		return err
	}
	c.BinDir = bin
	if c.Kubectl == "" {
		c.Kubectl = filepath.Join(bin, "kubectl")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max // children (the hub) inherit it
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return bench.Run(ctx, c)
}
