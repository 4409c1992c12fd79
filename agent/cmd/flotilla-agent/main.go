// Command flotilla-agent runs inside a cluster, dials out to the Flotilla
// hub and keeps the cluster at the desired state the hub sends.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/agent/internal/run"
	"github.com/flotilla-cd/flotilla/shared/envflag"
	"github.com/flotilla-cd/flotilla/shared/logbridge"
	"github.com/flotilla-cd/flotilla/shared/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runMain(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flotilla-agent:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, args []string) error {
	o := run.DefaultOptions()
	fs := pflag.NewFlagSet("flotilla-agent", pflag.ContinueOnError)
	o.BindFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := envflag.Apply(fs, "FLOTILLA"); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println(version.Version)
		return nil
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "agent", Level: hclog.LevelFromString(o.LogLevel), JSONFormat: o.LogJSON}).With("cluster", o.Cluster)
	logbridge.Install(log)
	return run.Run(ctx, o, log)
}
