//go:build !unit

package engine

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func TestFailedSyncRetriesWithBackoff(t *testing.T) {
	_, agentNS := testNamespaces(t)
	later := "later-" + agentNS
	e := startEngine(t, agentNS)
	pol := auto(true, true)
	pol.Retry = &apiv1alpha1.Retry{Limit: -1, BackoffDurationMs: 100, BackoffFactor: 2, BackoffMaxDurationMs: 400}
	accept(t, e, bundle(t, "retry", later, pol, nil, configMap("c", nil)))
	st := waitStatus(t, e, "retry", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	if !strings.Contains(st.GetMessage(), "ConfigMap "+later+"/c") {
		t.Errorf("message %q does not name the object", st.GetMessage())
	}
	mustCreate(t, gvrNamespace, "", testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": later}}))
	st = waitStatus(t, e, "retry", 10*time.Second, synced)
	if st.GetMessage() != "" {
		t.Errorf("message after success = %q, want empty", st.GetMessage())
	}
}

// watchOrder watches the ConfigMaps of ns and, at the first deletion,
// reports the adds and that delete in the order the watch saw them.
func watchOrder(t *testing.T, ns string) <-chan []string {
	t.Helper()
	w, err := dyn.Resource(gvrConfigMap).Namespace(ns).Watch(t.Context(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	out := make(chan []string, 1)
	go func() {
		var seq []string
		for ev := range w.ResultChan() {
			o, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			switch ev.Type {
			case watch.Added:
				seq = append(seq, "+"+o.GetName())
			case watch.Deleted:
				seq = append(seq, "-"+o.GetName())
				out <- seq
				return
			}
		}
	}()
	return out
}

func TestPruneOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []string
		want string
	}{
		// By default a left-over object is pruned in its own wave (0),
		// before the next wave is applied.
		{name: "in its wave", want: "+old +new0 -old"},
		// PruneLast prunes after every wave.
		{name: "last", opts: []string{"PruneLast=true"}, want: "+old +new0 +new1 -old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, agentNS := testNamespaces(t)
			e := startEngine(t, agentNS)
			accept(t, e, bundle(t, "order", ns, auto(true, true, tc.opts...), nil, configMap("old", nil)))
			waitStatus(t, e, "order", 10*time.Second, synced)
			order := watchOrder(t, ns)
			new1 := configMap("new1", nil)
			new1.SetAnnotations(map[string]string{manifest.SyncWaveAnnotation: "1"})
			next := bundle(t, "order", ns, auto(true, true, tc.opts...), nil, configMap("new0", nil), new1)
			accept(t, e, next)
			waitStatus(t, e, "order", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == next.GetDigest() })
			select {
			case seq := <-order:
				if got := strings.Join(seq, " "); got != tc.want {
					t.Errorf("order = %q, want %q", got, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("old was never deleted")
			}
		})
	}
}

// TestRetryFollowsTheClock: a failed sync's retry is due by the engine's
// clock. With a one-hour backoff on a fake clock, the retry runs as soon as
// the clock passes that hour, not an hour of real time later.
func TestRetryFollowsTheClock(t *testing.T) {
	_, agentNS := testNamespaces(t)
	later := "clock-" + agentNS
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, clock: clk})
	pol := auto(true, true)
	pol.Retry = &apiv1alpha1.Retry{Limit: -1, BackoffDurationMs: time.Hour.Milliseconds(), BackoffFactor: 1}
	accept(t, e, bundle(t, "retry", later, pol, nil, configMap("c", nil)))
	st := waitStatus(t, e, "retry", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	failedAt := st.GetLastOperation().GetFinishedAt().AsTime()
	mustCreate(t, gvrNamespace, "", testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": later}}))
	// The worker may arm its timer after a step: step again on every poll.
	deadline := time.Now().Add(20 * time.Second)
	for !synced(statusOf(e, "retry")) {
		if time.Now().After(deadline) {
			t.Fatalf("not synced after stepping the clock: %v", statusOf(e, "retry"))
		}
		clk.Step(2 * time.Hour)
		select {
		case <-e.Updates():
		case <-time.After(100 * time.Millisecond):
		}
	}
	op := statusOf(e, "retry").GetLastOperation()
	if !op.GetStartedAt().AsTime().After(failedAt.Add(time.Hour)) {
		t.Errorf("retry started at %v, want an hour after the failure at %v on the engine's clock", op.GetStartedAt().AsTime(), failedAt)
	}
}
