//go:build !unit

package chartsource_test

import (
	"fmt"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/chartsource"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/render/engines"
	"github.com/flotilla-cd/flotilla/hub/testsupport/chartrepo"
)

// BenchmarkChartFromRepository renders a chart from a real HTTPS Helm
// repository (basic auth) with a dependency from that repository, as a
// chart source does: resolve the constraint (index.yaml), fetch (download,
// expand, build the dependency) and render 21 ConfigMaps. cold: an empty
// chart cache and render cache every iteration; cached: both kept, so an
// iteration is one index request and a render-cache hit.
func BenchmarkChartFromRepository(b *testing.B) {
	r := chartrepo.New(b, "ci", "s3cret")
	r.Add(chart.Metadata{Name: "base", Version: "1.0.0"}, map[string]string{"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n"})
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("templates/cm%d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-%d}\ndata: {greeting: {{ .Values.greeting | default \"hi\" | quote }}}\n", i)
	}
	r.Add(chart.Metadata{Name: "web", Version: "1.2.0", Dependencies: []*chart.Dependency{{Name: "base", Version: "1.x", Repository: r.URL}}}, files)
	newManager := func() *chartsource.Manager {
		m, err := chartsource.New(chartsource.Options{Dir: b.TempDir(), CABundle: r.CA, Auth: func(string) (string, string, bool, error) { return "ci", "s3cret", true, nil }})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	run := func(b *testing.B, m *chartsource.Manager, rd *render.Renderer) {
		ctx := b.Context()
		ref, err := m.Resolve(ctx, r.URL, "web", "1.2.x")
		if err != nil {
			b.Fatal(err)
		}
		dir, err := m.Fetch(ctx, r.URL, "web", ref)
		if err != nil {
			b.Fatal(err)
		}
		name, err := chartsource.ChartDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		in := render.Input{Root: dir, Source: app.Source{Path: name, Helm: &app.Helm{}}, Namespace: "web", AppName: "web"}
		objs, err := rd.Render(ctx, render.CacheKey("chart:"+ref.String(), in), in)
		if err != nil || len(objs) != 21 {
			for _, o := range objs {
				b.Log(o.GetKind(), o.GetName())
			}
			b.Fatalf("render: %d objects, %v; want 21", len(objs), err)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			run(b, newManager(), render.New(render.Options{Engines: engines.New()}))
		}
	})
	b.Run("cached", func(b *testing.B) {
		m, rd := newManager(), render.New(render.Options{Engines: engines.New()})
		run(b, m, rd)
		for b.Loop() {
			run(b, m, rd)
		}
		b.ReportMetric(float64(rd.Stats().Renders), "renders")
	})
}
