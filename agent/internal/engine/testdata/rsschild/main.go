// Command rsschild runs only the agent's engine, from the state persisted in
// a cluster, until every app is Synced, lets it settle, and prints its
// memory figures. BenchmarkAgentRSS builds and runs it, so the figure is that
// of an engine alone in a small binary, not of the test binary.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-cd/flotilla/agent/internal/engine"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rsschild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: rsschild KUBECONFIG AGENT_NAMESPACE")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", args[0])
	if err != nil {
		return err
	}
	e, err := engine.New(cfg, engine.Options{Namespace: args[1]}, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := e.Load(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	deadline := time.After(2 * time.Minute)
	for !allSynced(e.Statuses()) {
		select {
		case <-e.Updates():
		case <-deadline:
			return fmt.Errorf("not synced within 2m")
		}
	}
	settle := time.NewTimer(3 * time.Second) // steady state: watches open, nothing to do
	<-settle.C
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	objects := 0
	for _, s := range e.Statuses() {
		objects += len(s.GetObjects())
	}
	fmt.Printf("objects=%d rss_kib=%d hwm_kib=%d anon_kib=%d file_kib=%d heap_inuse_kib=%d\n",
		objects, procStatus("VmRSS:"), procStatus("VmHWM:"), procStatus("RssAnon:"), procStatus("RssFile:"), ms.HeapInuse>>10)
	cancel()
	<-done
	return nil
}

func allSynced(sts []*apiv1alpha1.AppStatus) bool {
	if len(sts) == 0 {
		return false
	}
	for _, s := range sts {
		if s.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED || s.GetLastOperation().GetPhase() != apiv1alpha1.Operation_PHASE_SUCCEEDED {
			return false
		}
	}
	return true
}

func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == field {
			v, _ := strconv.ParseInt(fs[1], 10, 64)
			return v
		}
	}
	return 0
}
