package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Child-process mode of the test binary, for BenchmarkAgentRSS: an engine
// alone in its process, started from the persisted state.
const (
	envChildKubeconfig = "FLOTILLA_RSS_CHILD_KUBECONFIG"
	envChildNamespace  = "FLOTILLA_RSS_CHILD_NAMESPACE"
)

// rssChild runs an engine from the persisted state until every app is
// Synced, lets it settle, and prints its memory figures. It returns the
// process exit code.
func rssChild() int {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(envChildKubeconfig))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e, err := New(cfg, Options{Namespace: os.Getenv(envChildNamespace)}, hclog.NewNullLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Load(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = e.Run(ctx) }()
	deadline := time.After(2 * time.Minute)
	for !allSynced(e) {
		select {
		case <-e.Updates():
		case <-deadline:
			fmt.Fprintln(os.Stderr, "not synced within 2m")
			return 1
		}
	}
	// Steady state: watches open, caches full, nothing to do.
	settle := time.NewTimer(3 * time.Second)
	<-settle.C
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	objects := 0
	for _, s := range e.Statuses() {
		objects += len(s.GetObjects())
	}
	fmt.Printf("objects=%d rss_kib=%d hwm_kib=%d heap_inuse_kib=%d\n", objects, procStatus("VmRSS:"), procStatus("VmHWM:"), ms.HeapInuse>>10)
	if p := os.Getenv("FLOTILLA_RSS_CHILD_HEAPPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	fmt.Fprintf(os.Stderr, "RssAnon=%d RssFile=%d HeapSys=%d StackSys=%d Sys=%d\n", procStatus("RssAnon:"), procStatus("RssFile:"), ms.HeapSys>>10, ms.StackSys>>10, ms.Sys>>10)
	return 0
}

func allSynced(e *Engine) bool {
	sts := e.Statuses()
	if len(sts) == 0 {
		return false
	}
	for _, s := range sts {
		if !synced(s) {
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

// BenchmarkAgentRSS measures the resident memory of an engine, alone in a
// process, that manages 1,000 objects: the bundle is accepted and synced
// here, then a fresh process (this test binary in child mode) loads it from
// the cluster, re-checks every object and keeps watching.
func BenchmarkAgentRSS(b *testing.B) {
	ns, agentNS := testNamespaces(b)
	e, stop := runEngine(b, agentNS)
	if err := e.Accept(context.Background(), []*apiv1alpha1.Bundle{bundle(b, "bench", ns, auto(true, true), nil, benchObjects()...)}, nil); err != nil {
		b.Fatal(err)
	}
	waitFor(b, e, "bench", 2*time.Minute, synced)
	stop()
	kc := filepath.Join(b.TempDir(), "kubeconfig")
	if err := testenv.WriteKubeconfig(restCfg, kc); err != nil {
		b.Fatal(err)
	}
	var rss, hwm, heap float64
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChildKubeconfig+"="+kc, envChildNamespace+"="+agentNS)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var objects, r, h, hp int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "objects=%d rss_kib=%d hwm_kib=%d heap_inuse_kib=%d", &objects, &r, &h, &hp); err != nil {
			b.Fatalf("child output %q: %v", out, err)
		}
		if objects != 1000 {
			b.Fatalf("child manages %d objects, want 1000", objects)
		}
		rss, hwm, heap = float64(r)/1024, float64(h)/1024, float64(hp)/1024
	}
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(hwm, "peak-rss-MiB")
	b.ReportMetric(heap, "heap-inuse-MiB")
}
