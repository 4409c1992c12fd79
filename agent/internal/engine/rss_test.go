//go:build !unit

package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// BenchmarkAgentRSS measures the resident memory of an engine alone in a
// small binary (testdata/rsschild) that manages 1,000 objects: the bundle is
// accepted and synced here, then the child loads it from the cluster,
// reaches Synced, settles and reports its memory.
func BenchmarkAgentRSS(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "rsschild")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/rsschild").CombinedOutput(); err != nil {
		b.Fatalf("build rsschild: %v\n%s", err, out)
	}
	ns, agentNS := testNamespaces(b)
	e, stop := runEngine(b, agentNS)
	if err := e.Accept(context.Background(), []*apiv1alpha1.Bundle{bundle(b, "bench", ns, auto(true, true), nil, benchObjects()...)}, nil); err != nil {
		b.Fatal(err)
	}
	waitFor(b, e, "bench", 2*time.Minute, synced)
	stop()
	kc := filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(restCfg, kc); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var objects, rss, hwm, anon, file, heap int64
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, kc, agentNS)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("rsschild: %v\n%s", err, out)
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "objects=%d rss_kib=%d hwm_kib=%d anon_kib=%d file_kib=%d heap_inuse_kib=%d", &objects, &rss, &hwm, &anon, &file, &heap); err != nil {
			b.Fatalf("rsschild output %q: %v", out, err)
		}
		if objects != 1000 {
			b.Fatalf("rsschild manages %d objects, want 1000", objects)
		}
	}
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	b.ReportMetric(mib(rss), "rss-MiB")
	b.ReportMetric(mib(hwm), "peak-rss-MiB")
	b.ReportMetric(mib(anon), "anon-MiB")
	b.ReportMetric(mib(file), "file-MiB")
	b.ReportMetric(mib(heap), "heap-inuse-MiB")
}
