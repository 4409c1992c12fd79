package engines

import (
	"context"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

var regions = []string{"eu", "us", "ap", "sa"}

func benchClusters(n int) []target.Cluster {
	out := make([]target.Cluster, n)
	for i := range out {
		out[i] = target.Cluster{Name: fmt.Sprintf("cluster-%04d", i), Labels: map[string]string{
			"env": "prod", "region": regions[i%len(regions)],
		}}
	}
	return out
}

// benchApp returns application i: a Helm chart with per-region values
// (i%3 == 0), a Kustomize overlay with a per-app name prefix (1) or a plain
// directory (2). All target every cluster.
func benchApp(i int) *app.Application {
	a := &app.Application{
		Name: fmt.Sprintf("app-%03d", i),
		Spec: app.Spec{
			Source:      app.Source{RepoURL: "https://git.example.com/config.git"},
			Destination: app.Destination{Namespace: fmt.Sprintf("ns-%03d", i), ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}},
		},
	}
	switch i % 3 {
	case 0:
		a.Spec.Source.Path = "helm/mychart"
		a.Spec.Source.Helm = &app.Helm{ValueFiles: []string{"values-prod.yaml"}, Values: "region: '{{ .cluster.labels.region }}'\n"}
	case 1:
		a.Spec.Source.Path = "kustomize/overlays/prod"
		a.Spec.Source.Kustomize = &app.Kustomize{NamePrefix: a.Name + "-"}
	default:
		a.Spec.Source.Path = "guestbook"
	}
	return a
}

// fanOut computes every (app, cluster) bundle the way the hub does on a
// commit: targeting, effective source, cache key, render through the
// cache, bundle with digest. With dedup, a bundle is built once per (app,
// render key) and shared by the clusters with that key. It returns the
// number of bundles.
func fanOut(b *testing.B, r *render.Renderer, root string, apps []*app.Application, clusters []target.Cluster, dedup bool) int {
	ctx := context.Background()
	n := 0
	built := map[string]bool{}
	for _, a := range apps {
		for _, c := range clusters {
			if !target.Targets(a, c) {
				continue
			}
			src, err := target.Effective(a, c)
			if err != nil {
				b.Fatal(err)
			}
			in := render.Input{Root: root, Source: src, Namespace: a.Spec.Destination.Namespace, AppName: a.Name}
			key := render.CacheKey("commit-1", in)
			objs, err := r.Render(ctx, key, in)
			if err != nil {
				b.Fatal(err)
			}
			n++
			if dedup && built[key] {
				continue
			}
			built[key] = true
			if _, err := manifest.NewBundle(a.Name, in.Namespace, "commit-1", src.Path, objs, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	return n
}

// BenchmarkFanOut measures render plus fan-out computation. "cold" starts
// from an empty cache each iteration (a commit that changed every app);
// "warm" reuses the cache (recomputing after a commit that changed no
// app's inputs, or a new cluster joining). "-dedup" builds each distinct
// bundle once instead of once per cluster.
func BenchmarkFanOut(b *testing.B) {
	root := repoRootForTest(b)
	for _, sc := range []struct {
		name           string
		apps, clusters int
	}{
		{"1app-1000clusters", 1, 1000},
		{"100apps-100clusters", 100, 100},
	} {
		apps := make([]*app.Application, sc.apps)
		for i := range apps {
			apps[i] = benchApp(i)
		}
		clusters := benchClusters(sc.clusters)
		for _, mode := range []string{"cold", "warm", "cold-dedup", "warm-dedup"} {
			dedup := strings.HasSuffix(mode, "-dedup")
			warm := strings.HasPrefix(mode, "warm")
			b.Run(sc.name+"/"+mode, func(b *testing.B) {
				r := newRenderer(render.Options{MaxEntries: 4096})
				if warm {
					fanOut(b, r, root, apps, clusters, dedup)
				}
				start := r.Stats()
				bundles := 0
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if !warm {
						r = newRenderer(render.Options{MaxEntries: 4096})
						start = render.Stats{}
					}
					bundles = fanOut(b, r, root, apps, clusters, dedup)
				}
				b.StopTimer()
				renders := r.Stats().Renders - start.Renders
				if warm {
					renders /= uint64(b.N)
				}
				b.ReportMetric(float64(renders), "renders/op")
				b.ReportMetric(float64(bundles), "bundles/op")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bundles), "ns/bundle")
			})
		}
	}
}

// BenchmarkRender measures one uncached render of each source kind.
func BenchmarkRender(b *testing.B) {
	root := repoRootForTest(b)
	for _, tt := range []struct {
		name string
		src  app.Source
	}{
		{"directory", app.Source{Path: "guestbook"}},
		{"kustomize", app.Source{Path: "kustomize/overlays/prod"}},
		{"helm", app.Source{Path: "helm/mychart", Helm: &app.Helm{ValueFiles: []string{"values-prod.yaml"}}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			in := render.Input{Root: root, Source: tt.src, Namespace: "ns", AppName: "web"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := renderSource(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEffectiveAndKey measures the per-(app, cluster) work besides
// rendering: targeting, the effective source with templating, the key.
func BenchmarkEffectiveAndKey(b *testing.B) {
	a := benchApp(0)
	c := benchClusters(1)[0]
	b.ReportAllocs()
	for b.Loop() {
		if !target.Targets(a, c) {
			b.Fatal("not targeted")
		}
		src, err := target.Effective(a, c)
		if err != nil {
			b.Fatal(err)
		}
		_ = render.CacheKey("commit", render.Input{Source: src, Namespace: "ns", AppName: a.Name})
	}
}

// BenchmarkNewBundle measures manifest.NewBundle alone on a rendered app,
// the per-cluster cost that remains when every render is a cache hit.
func BenchmarkNewBundle(b *testing.B) {
	root := repoRootForTest(b)
	in := render.Input{Root: root, Source: app.Source{Path: "helm/mychart"}, Namespace: "ns", AppName: "web"}
	objs, err := renderSource(context.Background(), in)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := manifest.NewBundle("web", "ns", "c", "helm/mychart", objs, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
