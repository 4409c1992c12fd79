// Command quickstart shows Flotilla end to end on this machine: it starts a
// real local Kubernetes cluster (etcd, kube-apiserver, controller-manager,
// scheduler and a kwok node, as processes), serves a git repo of example
// apps over HTTP, starts the hub following it, enrols an agent through the
// CLI's join command, waits until the apps are Synced and Healthy and prints
// their status from the hub.
//
// On a terminal it then keeps everything running until Ctrl-C; otherwise it
// stops everything and exits (0 when every app converged).
package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

//go:embed all:repo apps
var examples embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fl := pflag.NewFlagSet("quickstart", pflag.ContinueOnError)
	binDir := fl.String("bin-dir", "bin", "folder with flotilla-hub, flotilla-render, flotilla, flotilla-agent and the control-plane binaries")
	keep := fl.Bool("keep", term.IsTerminal(int(os.Stdin.Fd())), "keep running until Ctrl-C")
	if err := fl.Parse(args); err != nil {
		return err
	}
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "flotilla-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	start := time.Now()
	step := func(format string, a ...any) {
		fmt.Printf("==> [%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}

	step("starting a local Kubernetes cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok node)")
	prov := &cluster.ProcessProvider{BinDir: bin, WorkDir: work, Full: true}
	cl, err := prov.Create(ctx, "local")
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = cl.Stop(sctx)
	}()

	step("serving a git repo of example apps over HTTP")
	srv, err := gitserver.Start(filepath.Join(work, "git"))
	if err != nil {
		return err
	}
	defer srv.Close()
	repo, err := srv.NewRepo("platform-config", filepath.Join(work, "platform-config"))
	if err != nil {
		return err
	}
	files, err := readTree("repo")
	if err != nil {
		return err
	}
	if err := repo.Write(files); err != nil {
		return err
	}
	rev, err := repo.CommitAndPush("example apps: guestbook (plain YAML), podinfo (Kustomize), redis (Helm)")
	if err != nil {
		return err
	}
	appsDir := filepath.Join(work, "apps")
	defs, err := readTree("apps")
	if err != nil {
		return err
	}
	for name, b := range defs {
		p := filepath.Join(appsDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "{{REPO}}", repo.URL)), 0o644); err != nil {
			return err
		}
	}

	step("starting flotilla-hub (apps from %s, repo %s at %s)", appsDir, repo.URL, rev[:8])
	hub, err := harness.StartHub(ctx, bin, work, harness.HubOptions{AppsDir: appsDir, PollInterval: 5 * time.Second, Extra: []string{"--log-level", "info"}})
	if err != nil {
		return err
	}
	defer hub.Stop()

	step("flotilla cluster add local --label env=dev")
	join, err := hub.AddCluster(ctx, "local", "env=dev")
	if err != nil {
		return err
	}
	step("starting flotilla-agent (enrols with the join token, pins the hub CA %s…)", join.CAHash[:19])
	agent, err := harness.StartAgent(bin, work, cl.Kubeconfig(), join, "--log-level", "info")
	if err != nil {
		return err
	}
	defer agent.Stop()

	step("waiting for every app to be Synced and Healthy")
	for _, app := range []string{"guestbook", "podinfo", "redis"} {
		if err := hub.WaitSynced(ctx, 3*time.Minute, app, "", true, "local"); err != nil {
			fmt.Println(hub.Tail(4000))
			fmt.Println(agent.Tail(4000))
			return err
		}
	}
	step("all apps converged")
	for _, args := range [][]string{{"cluster", "list"}, {"app", "list"}} {
		out, err := hub.CLI(ctx, args...)
		if err != nil {
			return err
		}
		fmt.Printf("\n$ flotilla %s\n%s", strings.Join(args, " "), out)
	}
	if !*keep {
		fmt.Println("\nDone; stopping the hub, agent and cluster (run with --keep to leave them up).")
		return nil
	}
	fmt.Printf(`
Everything keeps running until Ctrl-C. In another shell:

  export FLOTILLA_SERVER=%s FLOTILLA_TOKEN=%s
  export KUBECONFIG=%s
  %s/flotilla app list
  kubectl -n guestbook scale deployment guestbook-ui --replicas=3   # reverted by selfHeal
  open %s/ for the web UI
`, hub.HTTPURL, hub.Token, cl.Kubeconfig(), bin, hub.HTTPURL)
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.Canceled) {
		fmt.Println("\nstopping")
	}
	return nil
}

// readTree returns the embedded files under dir, keyed by path below dir.
func readTree(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(examples, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := examples.ReadFile(p)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(p, dir+"/")] = b
		return nil
	})
	return out, err
}
