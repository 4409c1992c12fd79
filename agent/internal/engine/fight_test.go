//go:build !unit

package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestSelfHealFight changes a Deployment again as soon as the engine shows
// the app Synced, as another controller fighting the agent would (the
// back-to-back series of the self-heal benchmark), while a stand-in for the
// Deployment controller writes the status of every generation. Every change
// must be reverted and the app must come back to Synced each time, the
// delayed heals past the burst included. The pacing is shortened so that
// the series reaches the longest wait within seconds.
func TestSelfHealFight(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	pace := healPacing{burst: 3, fight: time.Second, base: 50 * time.Millisecond, max: 400 * time.Millisecond}
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, healPacing: pace})
	accept(t, e, bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil)))
	waitStatus(t, e, "web", 20*time.Second, synced)
	observeGenerations(t, ns, "web")

	const changes = 20
	for i := range changes {
		to := int64(3 + i%3)
		scale(t, ns, "web", to)
		testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
			r := replicas(t, ns, "web")
			return r == 2, fmt.Sprintf("change %d of %d (to %d replicas) not reverted: replicas %d", i+1, changes, to, r)
		})
		testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
			s := statusOf(e, "web")
			return synced(s), fmt.Sprintf("app not Synced after change %d of %d was reverted: %v", i+1, changes, s)
		})
	}
	o := objectStatus(statusOf(e, "web"), "Deployment", "web")
	if o.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
		t.Errorf("deployment status after the fight = %v, want Synced", o)
	}
}

// TestSelfHealDelayedThenPutBack has a self-heal delayed by the pacing when
// someone else puts the object back to its desired state: the app must be
// Synced again at once, not stay OutOfSync ("self-heal delayed") although
// nothing differs. A later drift is still healed after its delay.
func TestSelfHealDelayedThenPutBack(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	// One heal at once, then every drift within 10 s of the last heal
	// waits 6 s after it.
	pace := healPacing{burst: 1, fight: 10 * time.Second, base: 6 * time.Second, max: 6 * time.Second}
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, healPacing: pace})
	accept(t, e, bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil)))
	waitStatus(t, e, "web", 20*time.Second, synced)

	scaleAndWaitReverted(t, e, ns, 5, 10*time.Second, "first change not reverted at once")

	scale(t, ns, "web", 6)
	waitStatus(t, e, "web", 4*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return strings.Contains(objectStatus(s, "Deployment", "web").GetMessage(), "self-heal delayed")
	})
	if r := replicas(t, ns, "web"); r != 6 {
		t.Fatalf("replicas = %d while the heal is delayed, want 6", r)
	}
	scale(t, ns, "web", 2) // someone puts it back
	// Past the delayed heal's time as well: it must not be what ends it.
	waitStatus(t, e, "web", 15*time.Second, synced)

	scaleAndWaitReverted(t, e, ns, 7, 15*time.Second, "drift after the put-back not healed")
}

// scaleAndWaitReverted scales Deployment web to n and waits until the
// engine has put it back to 2 replicas and reports the app Synced.
func scaleAndWaitReverted(t *testing.T, e *Engine, ns string, n int64, within time.Duration, what string) {
	t.Helper()
	scale(t, ns, "web", n)
	testenv.Eventually(t, within, func(context.Context) (bool, string) {
		r := replicas(t, ns, "web")
		return r == 2, fmt.Sprintf("%s: replicas %d", what, r)
	})
	waitStatus(t, e, "web", 10*time.Second, synced)
}

// observeGenerations stands in for the Deployment controller until the test
// ends: for every new generation of the Deployment it writes
// status.observedGeneration and status.replicas, so that status-only
// updates of a drifted spec reach the engine around its heals, as on a
// real cluster.
func observeGenerations(t *testing.T, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	deps := dyn.Resource(gvrDeploy).Namespace(ns)
	w, err := deps.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		cancel()
		t.Fatalf("watch deployment %s/%s: %v", ns, name, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		defer w.Stop()
		for ev := range w.ResultChan() {
			d, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			observed, _, _ := unstructured.NestedInt64(d.Object, "status", "observedGeneration")
			if observed >= d.GetGeneration() {
				continue
			}
			r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
			d = d.DeepCopy()
			_ = unstructured.SetNestedField(d.Object, d.GetGeneration(), "status", "observedGeneration")
			_ = unstructured.SetNestedField(d.Object, r, "status", "replicas")
			// A conflict means a newer write, whose own event follows.
			_, _ = deps.UpdateStatus(ctx, d, metav1.UpdateOptions{FieldManager: "kube-controller-manager"})
		}
	}()
}
