//go:build !unit

package controller

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCapabilitySets is the issue's "1,000 clusters with 3 distinct
// capability sets cost 3 renders": one Helm app on 1,000 clusters whose
// agents reported one of three capability sets; each operation is a
// commit to the chart, a refresh and a reconcile until every cluster has
// its bundle. It reports the chart renders per commit (renders/op, want
// 3) and the bundles the controller built (bundles/op).
func BenchmarkCapabilitySets(b *testing.B) {
	const clusters = 1000
	labels := map[string]map[string]string{}
	for i := range clusters {
		labels[fmt.Sprintf("c%04d", i)] = map[string]string{"env": "prod"}
	}
	w := newWorld(b, labels)
	w.push(capsChart)
	w.app("web", appYAML(w.repo.URL, "chart", "env: prod"))
	ctx := b.Context()
	for i := range clusters {
		s := capabilitySets[i%len(capabilitySets)]
		if err := w.c.SetCapabilities(ctx, fmt.Sprintf("c%04d", i), s.kube, s.apis); err != nil {
			b.Fatal(err)
		}
	}
	w.c.ReconcileNow(ctx)
	var bundles int
	w.c.opts.OnReconcile = func(_ time.Duration, renders int, _ error) { bundles += renders }
	start := w.r.Stats().Renders
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		rev := w.push(map[string]string{"chart/values.yaml": fmt.Sprintf("n: %d\n", i)})
		pollOnce(b, w, w.repo.URL)
		b.StartTimer()
		w.c.ReconcileNow(ctx)
		if ts := w.target("web", "c0999"); ts.Revision != rev || ts.Error != "" {
			b.Fatalf("c0999 at %s (error %q), want %s", ts.Revision, ts.Error, rev)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(w.r.Stats().Renders-start)/float64(b.N), "renders/op")
	b.ReportMetric(float64(bundles)/float64(b.N), "bundles/op")
}
