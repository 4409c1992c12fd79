//go:build !unit

package engines

import (
	"context"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
	"github.com/flotilla-cd/flotilla/shared/manifest"
	"github.com/google/go-cmp/cmp"
)

// TestMain makes the test binary a render worker when a pool of
// testWorkers starts it.
func TestMain(m *testing.M) {
	if os.Getenv("FLOTILLA_RENDER_TEST_WORKER") == "1" {
		if err := render.ServeWorker(context.Background(), New()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testWorkers returns a pool of workers (this test binary) that may read
// readDir, closed when tb ends.
func testWorkers(tb testing.TB, readDir string, edit func(*renderproc.Options)) *renderproc.Pool {
	tb.Helper()
	o := renderproc.DefaultOptions()
	o.Command = []string{os.Args[0]}
	o.Env = []string{"FLOTILLA_RENDER_TEST_WORKER=1"}
	o.ReadDirs = []string{readDir}
	if edit != nil {
		edit(&o)
	}
	p := renderproc.New(o, nil)
	tb.Cleanup(p.Close)
	return p
}

// TestGoldenInWorkers renders the golden cases in worker processes: the
// same objects, and the same errors, as in-process.
func TestGoldenInWorkers(t *testing.T) {
	root := repoRootForTest(t)
	r := newRenderer(render.Options{Workers: testWorkers(t, root, nil)})
	for _, tt := range goldenTests {
		t.Run(tt.name, func(t *testing.T) {
			in := render.Input{Root: root, Source: tt.src, Namespace: tt.ns, AppName: "web"}
			objs, err := r.Render(t.Context(), render.CacheKey("tree", in), in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, render.ErrRender) {
				t.Errorf("%v does not wrap render.ErrRender", err)
			}
			golden(t, tt.name, dump(root, objs, err))
			if err != nil {
				return
			}
			local, err := renderSource(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			a, err := manifest.NewBundle("web", tt.ns, "c", tt.src.Path, objs, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := manifest.NewBundle("web", tt.ns, "c", tt.src.Path, local, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.GetDigest() != b.GetDigest() {
				t.Errorf("bundle digest %s from the worker, %s in-process", a.GetDigest(), b.GetDigest())
			}
		})
	}
}

// writeChart writes a chart named name with one template into a new
// repository folder and returns the folder.
func writeChart(t *testing.T, name, template string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, name, "templates")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		filepath.Join(root, name, "Chart.yaml"): "apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n",
		filepath.Join(dir, "cm.yaml"):           template,
	}
	for p, data := range files {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// cpuBomb is a template that runs for hours: Go's text/template cannot be
// interrupted.
const cpuBomb = `apiVersion: v1
kind: ConfigMap
metadata:
  name: bomb
data:
  n: "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}"
`

// memoryBomb is a template that doubles a string until it fills memory.
const memoryBomb = `{{ $s := "0123456789abcdef" }}{{ range until 40 }}{{ $s = printf "%s%s" $s $s }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: bomb
data:
  s: "{{ $s }}"
`

func TestHelmBombsStopped(t *testing.T) {
	for _, tt := range []struct {
		name, template string
		edit           func(*renderproc.Options)
		want           []string
	}{
		{"cpu", cpuBomb, func(o *renderproc.Options) { o.Timeout = time.Second },
			[]string{"helm chart bomb", "time limit of 1s", "--render-timeout"}},
		{"memory", memoryBomb, func(o *renderproc.Options) { o.Timeout = time.Minute; o.Memory = resource.MustParse("256Mi") },
			[]string{"helm chart bomb", "memory limit of 256Mi", "--render-memory-limit"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := writeChart(t, "bomb", tt.template)
			r := newRenderer(render.Options{Workers: testWorkers(t, root, tt.edit)})
			in := render.Input{Root: root, Source: app.Source{Path: "bomb"}, Namespace: "ns", AppName: "bomb"}
			_, err := r.Render(t.Context(), render.CacheKey("t", in), in)
			if !errors.Is(err, render.ErrRender) || !errors.Is(err, renderproc.ErrLimit) {
				t.Fatalf("got %v, want a render error wrapping ErrLimit", err)
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			// The app renders again once fixed (a new worker).
			if err := os.WriteFile(filepath.Join(root, "bomb/templates/cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fixed}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			objs, err := r.Render(t.Context(), render.CacheKey("t2", in), in)
			if err != nil || len(objs) != 1 || objs[0].GetName() != "fixed" {
				t.Errorf("after the fix: %d objects, %v", len(objs), err)
			}
		})
	}
}

// TestRenderCancelled: a render in a worker ends when ctx does.
func TestRenderCancelled(t *testing.T) {
	root := writeChart(t, "bomb", cpuBomb)
	r := newRenderer(render.Options{Workers: testWorkers(t, root, func(o *renderproc.Options) { o.Timeout = time.Hour })})
	in := render.Input{Root: root, Source: app.Source{Path: "bomb"}, Namespace: "ns", AppName: "bomb"}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := r.Render(ctx, render.CacheKey("t", in), in); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
}

// BenchmarkRenderInWorkers measures one uncached render of each kind
// through a render.Renderer with warm workers (compare BenchmarkRender, which
// renders in-process), and with a worker started for each render
// ("-cold": the cost of starting the binary).
func BenchmarkRenderInWorkers(b *testing.B) {
	root := repoRootForTest(b)
	for _, tt := range []struct {
		name string
		src  app.Source
	}{
		{"kustomize", app.Source{Path: "kustomize/overlays/prod"}},
		{"helm", app.Source{Path: "helm/mychart", Helm: &app.Helm{ValueFiles: []string{"values-prod.yaml"}}}},
	} {
		in := render.Input{Root: root, Source: tt.src, Namespace: "ns", AppName: "web"}
		b.Run(tt.name, func(b *testing.B) {
			r := newRenderer(render.Options{Workers: testWorkers(b, root, nil)})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := r.Render(b.Context(), render.CacheKey(fmt.Sprint(i), in), in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"-cold", func(b *testing.B) {
			for b.Loop() {
				p := testWorkers(b, root, nil)
				if _, err := newRenderer(render.Options{Workers: p}).Render(b.Context(), "k", in); err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}

// BenchmarkFanOutInWorkers is BenchmarkFanOut's 100apps-100clusters
// cold-dedup case with Helm and Kustomize rendered in warm workers.
func BenchmarkFanOutInWorkers(b *testing.B) {
	root := repoRootForTest(b)
	apps := make([]*app.Application, 100)
	for i := range apps {
		apps[i] = benchApp(i)
	}
	clusters := benchClusters(100)
	p := testWorkers(b, root, nil)
	bundles := 0
	for b.Loop() {
		bundles = fanOut(b, newRenderer(render.Options{MaxEntries: 4096, Workers: p}), root, apps, clusters, true)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bundles), "ns/bundle")
}

// TestJsonnetBombStopped: Jsonnet evaluation cannot be interrupted, so a
// directory with Jsonnet files renders in a worker, which is killed at the
// time limit; the error names the folder and the limit.
func TestJsonnetBombStopped(t *testing.T) {
	for _, tt := range []struct{ name, expr, want string }{
		{"cpu", "local f(n, acc) = if n == 0 then acc else f(n - 1, acc + 1) tailstrict; f(10000000000, 0)", "time limit of 1s"},
		{"memory", "std.foldl(function(a, b) a + b, std.range(1, 1000000000), 0)", "memory limit of"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "bomb"), 0o755); err != nil {
				t.Fatal(err)
			}
			bomb := "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' }, data: { n: std.toString(" + tt.expr + ") } }\n"
			if err := os.WriteFile(filepath.Join(root, "bomb/main.jsonnet"), []byte(bomb), 0o644); err != nil {
				t.Fatal(err)
			}
			r := newRenderer(render.Options{Workers: testWorkers(t, root, func(o *renderproc.Options) { o.Timeout = time.Second })})
			in := render.Input{Root: root, Source: app.Source{Path: "bomb"}, Namespace: "ns", AppName: "bomb"}
			_, err := r.Render(t.Context(), render.CacheKey("t", in), in)
			if !errors.Is(err, render.ErrRender) || !errors.Is(err, renderproc.ErrLimit) {
				t.Fatalf("got %v, want a render error wrapping ErrLimit", err)
			}
			for _, w := range []string{"jsonnet bomb", tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

// TestWorkerRendersWithCapabilities checks that capabilities reach a
// render worker process.
func TestWorkerRendersWithCapabilities(t *testing.T) {
	root := repoRootForTest(t)
	r := newRenderer(render.Options{Workers: testWorkers(t, root, nil)})
	in := render.Input{Root: root, Source: app.Source{Path: "helm/caps"}, Namespace: "shop", AppName: "web", Capabilities: clusterB}
	objs, err := r.Render(context.Background(), render.CacheKey("tree", in), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetAPIVersion()+" "+o.GetKind())
	}
	if diff := cmp.Diff([]string{"v1 ConfigMap", "policy/v1beta1 PodDisruptionBudget"}, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}
