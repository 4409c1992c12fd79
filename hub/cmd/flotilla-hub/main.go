// Command flotilla-hub is the Flotilla hub: it follows config repos, renders
// each cluster's desired state and serves it to agents. Helm charts,
// kustomizations and Jsonnet render, and charts are fetched, in worker
// processes of the flotilla-render binary installed next to it.
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

	"github.com/flotilla-cd/flotilla/hub/internal/server"
	"github.com/flotilla-cd/flotilla/shared/envflag"
	"github.com/flotilla-cd/flotilla/shared/logbridge"
	"github.com/flotilla-cd/flotilla/shared/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flotilla-hub:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "migrate" {
		return migrate(ctx, args[1:])
	}
	o := server.DefaultOptions()
	fs := pflag.NewFlagSet("flotilla-hub", pflag.ContinueOnError)
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
	log := hclog.New(&hclog.LoggerOptions{Name: "hub", Level: hclog.LevelFromString(o.LogLevel), JSONFormat: o.LogJSON})
	logbridge.Install(log)
	if err := o.Validate(); err != nil {
		return err
	}
	if err := server.ApplyMemorySettings(o, log); err != nil {
		return err
	}
	return server.Run(ctx, o, log)
}

// migrate is `flotilla-hub migrate --from bbolt --to kubernetes` (and
// back): it copies the whole state of one store into the other.
func migrate(ctx context.Context, args []string) error {
	var o server.MigrateOptions
	fs := pflag.NewFlagSet("flotilla-hub migrate", pflag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := envflag.Apply(fs, "FLOTILLA"); err != nil {
		return err
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "hub", Level: hclog.Info})
	logbridge.Install(log)
	_, err := server.RunMigrate(ctx, o, log)
	return err
}
