// Command agentsim runs many simulated Flotilla agents in one process for
// the fan-out benchmarks (see package sim). It raises its open-file limit to
// the hard limit, since every agent holds its own connection.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/e2e/cmd/agentsim/internal/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var o sim.Options
	var labels []string
	fs := pflag.NewFlagSet("agentsim", pflag.ContinueOnError)
	fs.StringVar(&o.HubAPI, "hub-api", "", "the hub's HTTP base URL")
	fs.StringVar(&o.AdminToken, "admin-token", "", "the hub's admin token (registers the clusters)")
	fs.StringVar(&o.Prefix, "prefix", "sim", "cluster name prefix")
	fs.IntVar(&o.First, "first", 0, "number of the first cluster")
	fs.IntVar(&o.Count, "count", 100, "number of simulated agents")
	fs.StringSliceVar(&labels, "label", nil, "cluster label k=v (repeatable)")
	fs.IntVar(&o.Parallel, "parallel", 16, "concurrent registrations and enrolments")
	fs.StringVar(&o.ControlListen, "control-listen", "127.0.0.1:0", "loopback address of the stats endpoint")
	fs.StringSliceVar(&o.Balance, "balance", nil, "hub replicas' agent addresses: dial a round-robin balancer over them in this process instead of the join's address (repeatable or comma-separated)")
	logLevel := fs.String("log-level", "info", "log level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if o.HubAPI == "" || o.AdminToken == "" {
		return errors.New("--hub-api and --admin-token are required")
	}
	o.Labels = map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--label %q: want k=v", l)
		}
		o.Labels[k] = v
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "agentsim", Level: hclog.LevelFromString(*logLevel)})
	return sim.Run(ctx, o, log)
}
