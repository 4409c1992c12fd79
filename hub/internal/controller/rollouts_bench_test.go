//go:build !unit

package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// BenchmarkRolloutSteps is issue 20's "1,000 agents rolled out in 10
// steps": one app on 1,000 clusters (100 per label wave=w0..w9), a
// rollout of 10 selector steps without soak. Each operation is one step:
// the step's 100 simulated agents report the new bundle Synced and Healthy
// (fleet.Report, what the agent API does with a status), then a reconcile
// finishes the step, starts the next, renders its clusters at the new
// revision and publishes the new desired state. It reports the hub's time
// per step (the timed part: decision, store write, desired state of 1,000
// clusters) as ns/op, and the clusters reached per step.
func BenchmarkRolloutSteps(b *testing.B) {
	const clusters, steps = 1000, 10
	labels := map[string]map[string]string{}
	for i := range clusters {
		labels[fmt.Sprintf("c%04d", i)] = map[string]string{"wave": fmt.Sprintf("w%d", i%steps)}
	}
	w := newWorld(b, labels)
	w.push(map[string]string{"web/cm.yaml": cmV1})
	var stepYAML strings.Builder
	for s := range steps {
		fmt.Fprintf(&stepYAML, "    - {name: w%[1]d, clusterSelector: {matchLabels: {wave: w%[1]d}}}\n", s)
	}
	w.app("web", fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source: {repoURL: %s, targetRevision: main, path: web}
  destination:
    namespace: web
    clusterSelector: {matchExpressions: [{key: wave, operator: Exists}]}
  syncPolicy: {automated: {prune: true, selfHeal: true}}
  rollout:
    stepDeadline: 1h
    steps:
%s`, w.repo.URL, stepYAML.String()))
	ctx := b.Context()
	w.c.ReconcileNow(ctx)
	reached := 0
	w.c.opts.OnRolloutEvent = func(_ context.Context, e rollout.Event) {
		if e.Type == rollout.EventReached {
			reached += len(e.Clusters)
		}
	}
	report := func(names []string) {
		snap := w.c.Snapshot()
		for _, ts := range snap.Apps[0].Targets {
			if names == nil || slices.Contains(names, ts.Cluster) {
				w.fl.Report(ts.Cluster, &apiv1alpha1.AppStatus{App: "web", Digest: ts.Digest,
					Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY})
			}
		}
	}
	report(nil)
	var stepTime time.Duration
	stepsDone := 0
	b.ResetTimer()
	b.StopTimer()
	for n := 0; stepsDone < b.N; n++ {
		// A new commit: its rollout starts at step 1 (not timed).
		w.push(map[string]string{"web/cm.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: '%d'}\n", n+3)})
		pollOnce(b, w, w.repo.URL)
		w.c.ReconcileNow(ctx)
		for stepsDone < b.N {
			ro, _ := w.c.RolloutOf("web")
			if ro.State.Done() {
				break
			}
			report(ro.State.Steps[ro.State.Step].Clusters)
			b.StartTimer()
			start := time.Now()
			w.c.ReconcileNow(ctx)
			stepTime += time.Since(start)
			b.StopTimer()
			stepsDone++
		}
	}
	b.ReportMetric(float64(reached)/float64(max(stepsDone, 1)), "clusters/step")
	b.ReportMetric(float64(stepTime.Milliseconds())/float64(max(stepsDone, 1)), "ms/step")
}
