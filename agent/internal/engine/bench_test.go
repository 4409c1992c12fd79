//go:build !unit

package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// benchObjects is the 1,000-object workload: 250 each of ConfigMaps,
// Secrets, Services and Deployments.
func benchObjects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for i := 0; i < 250; i++ {
		cm := configMap(fmt.Sprintf("cm-%03d", i), map[string]any{"index": strconv.Itoa(i), "payload": strings.Repeat("x", 512)})
		sec := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": fmt.Sprintf("sec-%03d", i)}, "stringData": map[string]any{"password": strconv.Itoa(i)}})
		out = append(out, cm, sec, service(fmt.Sprintf("svc-%03d", i)), deployment(fmt.Sprintf("dep-%03d", i), 2, nil))
	}
	return out
}

// waitFor blocks on e.Updates until cond holds for app.
func waitFor(tb testing.TB, e *Engine, app string, timeout time.Duration, cond func(*apiv1alpha1.AppStatus) bool) {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		if s := statusOf(e, app); s != nil && cond(s) {
			return
		}
		select {
		case <-e.Updates():
		case <-deadline:
			tb.Fatalf("app %s: condition not met within %s: %v", app, timeout, statusOf(e, app).GetMessage())
		}
	}
}

func rssKiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// BenchmarkApply1000 measures Accept → Synced for 1,000 new objects, then
// the cost of the same bundle on a restarted agent (no writes), and the
// memory the process holds while managing them.
func BenchmarkApply1000(b *testing.B) {
	objs := benchObjects()
	var resync time.Duration
	var rss, heap float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, agentNS := testNamespaces(b)
		bd := bundle(b, "bench", ns, auto(true, true), nil, objs...)
		e, stop := runEngine(b, agentNS)
		b.StartTimer()
		if err := e.Accept(context.Background(), []*apiv1alpha1.Bundle{bd}, nil); err != nil {
			b.Fatal(err)
		}
		waitFor(b, e, "bench", 2*time.Minute, synced)
		b.StopTimer()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, heap = rssKiB()/1024, float64(ms.HeapInuse)/(1<<20)
		stop()
		// A restarted agent re-checks the unchanged bundle without writing.
		start := time.Now()
		e2, stop2 := runEngine(b, agentNS)
		waitFor(b, e2, "bench", 2*time.Minute, synced)
		resync = time.Since(start)
		stop2()
		b.StartTimer()
	}
	b.ReportMetric(resync.Seconds(), "restart-resync-s")
	b.ReportMetric(rss, "process-rss-MiB")
	b.ReportMetric(heap, "heap-inuse-MiB")
}

// BenchmarkKubectlApply1000 applies the same 1,000 objects with kubectl,
// one file per object, client-side and server-side.
func BenchmarkKubectlApply1000(b *testing.B) {
	bins, err := testenv.BinDir()
	if err != nil {
		b.Fatal(err)
	}
	kubectl := filepath.Join(bins, "kubectl") // built by make bins
	dir := b.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(restCfg, kc); err != nil {
		b.Fatal(err)
	}
	files := filepath.Join(dir, "objects")
	if err := os.Mkdir(files, 0o755); err != nil {
		b.Fatal(err)
	}
	for i, o := range benchObjects() {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(files, fmt.Sprintf("%04d.yaml", i)), y, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []struct{ name, flag string }{{"client-side", ""}, {"server-side", "--server-side"}} {
		b.Run(mode.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ns, _ := testNamespaces(b)
				args := []string{"--kubeconfig", kc, "apply", "-n", ns, "-f", files}
				if mode.flag != "" {
					args = append(args, mode.flag)
				}
				cmd := exec.Command(kubectl, args...)
				b.StartTimer()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("kubectl %v: %v\n%s", args, err, out)
				}
			}
		})
	}
}

// BenchmarkSelfHealLatency measures the time from an out-of-band scale
// (kubectl scale: 2 → 5) to the moment the watch shows it reverted. It
// cycles over 100 Deployments, so each object is scaled again about every
// second or more: repeats by a person, not a fighting controller.
func BenchmarkSelfHealLatency(b *testing.B) {
	const n = 100
	ns, agentNS := testNamespaces(b)
	e := startEngine(b, agentNS)
	var objs []*unstructured.Unstructured
	for i := 0; i < n; i++ {
		objs = append(objs, deployment(fmt.Sprintf("web-%03d", i), 2, nil))
	}
	if err := e.Accept(context.Background(), []*apiv1alpha1.Bundle{bundle(b, "heal", ns, auto(true, true), nil, objs...)}, nil); err != nil {
		b.Fatal(err)
	}
	waitFor(b, e, "heal", time.Minute, synced)
	w, err := dyn.Resource(gvrDeploy).Namespace(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("web-%03d", i%n)
		start := time.Now()
		scaled, err := dyn.Resource(gvrDeploy).Namespace(ns).Patch(context.Background(), name, "application/merge-patch+json", []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{FieldManager: "kubectl-scale"}, "scale")
		if err != nil {
			b.Fatal(err)
		}
		scaledRV, _ := strconv.ParseUint(scaled.GetResourceVersion(), 10, 64)
		timeout := time.After(30 * time.Second)
	wait:
		for {
			select {
			case ev := <-w.ResultChan():
				o, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || ev.Type != watch.Modified || o.GetName() != name {
					continue
				}
				rv, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
				r, _, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
				if rv > scaledRV && r == 2 {
					break wait
				}
			case <-timeout:
				b.Fatalf("%s not reverted within 30s", name)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
