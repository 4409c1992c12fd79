//go:build !unit

package engine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// BenchmarkPreSyncHookOverhead measures what a PreSync hook adds to a sync
// beyond the hook's own run time (goal: 100 ms), on a running agent that
// has run a hook of that kind before (its watch of the kind is up). Each
// iteration syncs ten ConfigMaps as a new app with and without a PreSync
// Pod hook; a watcher plays the kubelet and ends the hook Pod the moment
// it sees it, and the time from seeing the Pod to its end is taken out.
// Times are the sync operation's own (its finishedAt − startedAt as the
// agent reports them; status updates are coalesced to 100 ms and would
// hide the difference). Reported: median(operation with the hook, less
// the hook's run time) − median(operation without it), both medians, and
// the same difference for the first sync with a hook on a fresh agent
// (which starts the watch of the kind).
func BenchmarkPreSyncHookOverhead(b *testing.B) {
	objs := make([]*unstructured.Unstructured, 10)
	for i := range objs {
		objs[i] = configMap(fmt.Sprintf("cm-%d", i), map[string]any{"k": "v"})
	}
	hook := hookPod("", "migrate-", map[string]string{manifest.HookAnnotation: "PreSync", manifest.HookDeletePolicyAnnotation: "HookSucceeded"})
	withHook := append([]*unstructured.Unstructured{hook}, objs...)
	end := func(ctx context.Context, ns string) time.Duration { return endHooksOnSight(b, ctx, ns) }
	_, agentNS := testNamespaces(b)
	e, stop := runEngine(b, agentNS)
	defer stop()
	coldBase := timeSync(b, e, "cold-base", objs, nil)
	cold := timeSync(b, e, "cold", withHook, end) - coldBase
	var bases, withs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		bases = append(bases, timeSync(b, e, fmt.Sprintf("base-%d", i), objs, nil))
		b.StartTimer()
		withs = append(withs, timeSync(b, e, fmt.Sprintf("hook-%d", i), withHook, end))
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(median(withs)-median(bases)), "hook-overhead-ms")
	b.ReportMetric(ms(median(bases)), "sync-ms")
	b.ReportMetric(ms(median(withs)), "sync-with-hook-less-run-ms")
	b.ReportMetric(ms(cold), "first-hook-kind-overhead-ms")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// timeSync syncs objs as app in a fresh namespace and returns the sync
// operation's duration, less what run returns (the hooks' run time).
func timeSync(b *testing.B, e *Engine, app string, objs []*unstructured.Unstructured, run func(context.Context, string) time.Duration) time.Duration {
	b.Helper()
	ns, _ := testNamespaces(b)
	bd := bundle(b, app, ns, auto(true, true), nil, objs...)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan time.Duration, 1)
	if run != nil {
		go func() { ran <- run(ctx, ns) }()
	} else {
		ran <- 0
	}
	if err := e.Accept(context.Background(), []*apiv1alpha1.Bundle{bd}, nil); err != nil {
		b.Fatal(err)
	}
	waitFor(b, e, app, time.Minute, synced)
	op := statusOf(e, app).GetLastOperation()
	took := op.GetFinishedAt().AsTime().Sub(op.GetStartedAt().AsTime())
	cancel()
	return took - <-ran
}

// endHooksOnSight watches the Pods of ns and sets each new one Succeeded
// as soon as it is seen; it returns the summed time from each Pod's
// creation (as seen) to the accepted status change, once ctx ends.
func endHooksOnSight(b *testing.B, ctx context.Context, ns string) time.Duration {
	w, err := dyn.Resource(gvrPod).Namespace(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Error(err)
		return 0
	}
	defer w.Stop()
	var total time.Duration
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type != "ADDED" {
			continue
		}
		seen := time.Now()
		patch := []byte(`{"status":{"phase":"Succeeded"}}`)
		if _, err := dyn.Resource(gvrPod).Namespace(ns).Patch(ctx, p.GetName(), "application/merge-patch+json", patch, metav1.PatchOptions{}, "status"); err != nil {
			b.Error(err)
			return total
		}
		total += time.Since(seen)
	}
	return total
}
