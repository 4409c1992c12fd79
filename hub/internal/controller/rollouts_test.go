//go:build !unit

package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func rolloutAppYAML(repo string) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source: {repoURL: %s, targetRevision: main, path: web}
  destination:
    namespace: web
    clusterSelector: {matchExpressions: [{key: wave, operator: Exists}]}
  syncPolicy: {automated: {prune: true, selfHeal: true}}
  rollout:
    autoRollback: true
    steps:
    - {name: canary, clusterSelector: {matchLabels: {wave: canary}}}
    - {name: wave1, clusterSelector: {matchLabels: {wave: wave1}}}
    - {name: wave2, clusterSelector: {matchLabels: {wave: wave2}}}
`, repo)
}

// placement is where each cluster is: its revision, and why it waits.
func placement(w *world, revs map[string]string) map[string]string {
	out := map[string]string{}
	for _, cl := range []string{"a-canary", "b-wave1", "c-wave2"} {
		ts := w.target("web", cl)
		rev := revs[ts.Revision]
		if ts.Revision == "" {
			rev = "?"
		}
		out[cl] = rev + " " + ts.Rollout
	}
	return out
}

// report makes cluster's agent report app at the digest the hub wants.
func report(fl *fleet.Fleet, w *world, cluster string, h apiv1alpha1.HealthStatus) {
	fl.Report(cluster, &apiv1alpha1.AppStatus{App: "web", Digest: w.target("web", cluster).Digest,
		Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: h})
}

// A new commit reaches the canary first, wave1 once the canary's agent
// reports it Synced and Healthy, and the state survives a hub restart; a
// Degraded cluster halts the rollout and autoRollback returns the reached
// clusters to the previous revision, wave2 never having had the new one.
func TestRolloutSteps(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a-canary": {"wave": "canary"}, "b-wave1": {"wave": "wave1"}, "c-wave2": {"wave": "wave2"}})
	var events []string
	w.c.opts.OnRolloutEvent = func(_ context.Context, e rollout.Event) {
		events = append(events, fmt.Sprintf("%s %d", e.Type, e.Step))
	}
	rev1 := w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("web", rolloutAppYAML(w.repo.URL))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	revs := map[string]string{rev1: "rev1"}
	if d := cmp.Diff(map[string]string{"a-canary": "rev1 ", "b-wave1": "rev1 ", "c-wave2": "rev1 "}, placement(w, revs)); d != "" {
		t.Fatalf("first revision goes everywhere (-want +got):\n%s", d)
	}
	d1 := w.target("web", "c-wave2").Digest

	rev2 := w.push(map[string]string{"web/cm.yaml": cmV2})
	revs[rev2] = "rev2"
	pollOnce(t, w, w.repo.URL)
	w.c.ReconcileNow(ctx)
	want := map[string]string{"a-canary": "rev2 ", "b-wave1": "rev1 waiting for step 2 (wave1)", "c-wave2": "rev1 waiting for step 3 (wave2)"}
	if d := cmp.Diff(want, placement(w, revs)); d != "" {
		t.Fatalf("after the commit (-want +got):\n%s", d)
	}
	if got := w.fl.DesiredOf("c-wave2")["web"].GetDigest(); got != d1 {
		t.Fatalf("wave2's desired digest moved to %s; want the previous %s", got, d1)
	}
	// Progressing is not enough.
	report(w.fl, w, "a-canary", apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING)
	w.c.ReconcileNow(ctx)
	if d := cmp.Diff(want, placement(w, revs)); d != "" {
		t.Fatalf("canary Progressing (-want +got):\n%s", d)
	}
	report(w.fl, w, "a-canary", apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY)
	w.c.ReconcileNow(ctx)
	want = map[string]string{"a-canary": "rev2 ", "b-wave1": "rev2 ", "c-wave2": "rev1 waiting for step 3 (wave2)"}
	if d := cmp.Diff(want, placement(w, revs)); d != "" {
		t.Fatalf("canary Healthy (-want +got):\n%s", d)
	}

	// A restarted hub (a new controller on the same store, with no
	// memory of the last bundles) resumes at step 2.
	fl2 := fleet.New()
	c2 := New(Options{AppsDir: w.appsDir, Resync: time.Hour}, w.git, w.r, fl2, w.st, hclog.NewNullLogger())
	w.c, w.fl = c2, fl2
	c2.ReconcileNow(ctx)
	if d := cmp.Diff(want, placement(w, revs)); d != "" {
		t.Fatalf("after a restart (-want +got):\n%s", d)
	}
	ro, ok := c2.RolloutOf("web")
	if !ok || ro.State.Step != 1 || ro.State.Phase != rollout.Progressing {
		t.Fatalf("rollout after restart: %+v", ro.State)
	}

	report(fl2, w, "b-wave1", apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED)
	c2.ReconcileNow(ctx)
	want = map[string]string{
		"a-canary": "rev1 rollout of " + rev2[:12] + " halted: cluster b-wave1 is Degraded at " + rev2[:12],
		"b-wave1":  "rev1 rollout of " + rev2[:12] + " halted: cluster b-wave1 is Degraded at " + rev2[:12],
		"c-wave2":  "rev1 rollout of " + rev2[:12] + " halted: cluster b-wave1 is Degraded at " + rev2[:12],
	}
	if d := cmp.Diff(want, placement(w, revs)); d != "" {
		t.Fatalf("wave1 Degraded (-want +got):\n%s", d)
	}
	if got := fl2.DesiredOf("a-canary")["web"].GetDigest(); got != d1 {
		t.Fatalf("canary's desired digest after the rollback: %s, want the previous %s", got, d1)
	}
	wantEvents := []string{"RolloutStarted 0", "StepStarted 1", "ClustersReached 1", "StepHealthy 1", "StepDone 1", "StepStarted 2", "ClustersReached 2"}
	if d := cmp.Diff(wantEvents, events); d != "" {
		t.Errorf("events of the first controller (-want +got):\n%s", d)
	}

	// Retry starts from step 1 again.
	if _, err := c2.Operate(ctx, "web", rollout.Retry, "alice"); err != nil {
		t.Fatal(err)
	}
	c2.ReconcileNow(ctx)
	want = map[string]string{"a-canary": "rev2 ", "b-wave1": "rev1 waiting for step 2 (wave1)", "c-wave2": "rev1 waiting for step 3 (wave2)"}
	if d := cmp.Diff(want, placement(w, revs)); d != "" {
		t.Fatalf("after retry (-want +got):\n%s", d)
	}
	if _, err := c2.Operate(ctx, "web", rollout.Approve, "alice"); err == nil {
		t.Fatal("approve of a rollout that waits for no approval: no error")
	}
}
