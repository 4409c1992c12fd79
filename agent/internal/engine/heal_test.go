//go:build !unit

package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func TestHealLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name  string
		pace  healPacing  // zero: defaultHealPacing
		heals []time.Time // heals recorded, each after asking delay()
		at    time.Time
		want  time.Duration
	}{
		{name: "first heal is immediate", at: t0, want: 0},
		{name: "heals a person spaces out stay immediate", heals: []time.Time{ms(0), ms(2000), ms(4000), ms(6000), ms(8000), ms(10000)}, at: ms(12000), want: 0},
		{name: "a burst of fights is still immediate", heals: []time.Time{ms(0), ms(10), ms(20), ms(30)}, at: ms(40), want: 0},
		{name: "a fight past the burst waits", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40)}, at: ms(50), want: 240 * time.Millisecond},
		{name: "the wait doubles", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40), ms(300)}, at: ms(310), want: 490 * time.Millisecond},
		{name: "the wait is bounded", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40), ms(300), ms(1000), ms(2500), ms(5000), ms(9000), ms(16000), ms(26500), ms(37000)}, at: ms(37000), want: defaultHealPacing.max},
		{name: "quiet resets", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40)}, at: ms(40 + 1251 + 1000), want: 0},
		{name: "a burst of one waits from the second heal", pace: healPacing{burst: 1, fight: 10 * time.Second, base: 6 * time.Second, max: 6 * time.Second}, heals: []time.Time{ms(0)}, at: ms(100), want: 5900 * time.Millisecond},
		{name: "other pacing: bounded by its max", pace: healPacing{burst: 2, fight: time.Second, base: 50 * time.Millisecond, max: 400 * time.Millisecond}, heals: []time.Time{ms(0), ms(10), ms(100), ms(300), ms(700), ms(1100)}, at: ms(1110), want: 390 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pace := tc.pace
			if pace == (healPacing{}) {
				pace = defaultHealPacing
			}
			var h healLimiter
			for _, at := range tc.heals {
				h.record(pace, at)
			}
			if diff := cmp.Diff(tc.want, h.delay(pace, tc.at)); diff != "" {
				t.Errorf("delay (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOlder: a cache state is skipped only when it is known to be older
// than our last write.
func TestOlder(t *testing.T) {
	tests := []struct {
		live, applied string
		want          bool
	}{
		{live: "99", applied: "100", want: true},
		{live: "100", applied: "100", want: false},
		{live: "101", applied: "100", want: false},
		{live: "99", applied: "", want: false},      // nothing written yet
		{live: "a1", applied: "a2", want: false},    // not numbers: unknown order
		{live: "99", applied: "x100", want: false},  // not numbers: unknown order
		{live: "1000", applied: "999", want: false}, // numbers, not strings
	}
	for _, tc := range tests {
		if got := older(tc.live, tc.applied); got != tc.want {
			t.Errorf("older(%q, %q) = %v, want %v", tc.live, tc.applied, got, tc.want)
		}
	}
}

func TestNotifierCoalesces(t *testing.T) {
	n := newNotifier(50 * time.Millisecond)
	defer n.stop()
	n.signal() // leading edge: at once
	select {
	case <-n.c:
	default:
		t.Fatal("first signal not delivered at once")
	}
	n.signal()
	n.signal()
	select {
	case <-n.c:
		t.Fatal("signal within the interval delivered early")
	default:
	}
	select {
	case <-n.c: // trailing edge
	case <-time.After(time.Second):
		t.Fatal("trailing signal never delivered")
	}
	select {
	case <-n.c:
		t.Fatal("coalesced signals delivered twice")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRefusalBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := refusalBackoff(i + 1); got != w {
			t.Errorf("refusalBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := refusalBackoff(100); got != 5*time.Minute {
		t.Errorf("refusalBackoff(100) = %v, want the 5m cap", got)
	}
	if got := oneLine(errors.New("Service \"web\" is invalid:\n  spec.ports[1].name: Required value\n")); got != `Service "web" is invalid: spec.ports[1].name: Required value` {
		t.Errorf("oneLine = %q", got)
	}
}

// TestHealed: drift is counted only when the self-heal write changed a
// field the bundle sets, never because the resourceVersion moved.
func TestHealed(t *testing.T) {
	k := manifest.Key{Group: "apps", Kind: "Deployment", Namespace: "ns", Name: "web"}
	obj := func(rv string, replicas int64, image string, status map[string]any) *unstructured.Unstructured {
		d := deployment("web", replicas, nil)
		d.SetNamespace("ns")
		d.SetResourceVersion(rv)
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = image
		_ = unstructured.SetNestedSlice(d.Object, containers, "spec", "template", "spec", "containers")
		if status != nil {
			d.Object["status"] = status
		}
		return d
	}
	for _, tc := range []struct {
		name      string
		out, live *unstructured.Unstructured
		want      bool
	}{
		{"object was deleted", obj("2", 1, "nginx:1", nil), nil, true},
		{"image reverted", obj("3", 1, "nginx:1", nil), obj("2", 1, "nginx:2", nil), true},
		{"HPA scaled replicas the bundle leaves out", obj("3", 5, "nginx:1", nil), obj("2", 5, "nginx:1", nil), false},
		{"only status and resourceVersion moved", obj("4", 1, "nginx:1", map[string]any{"readyReplicas": int64(1)}), obj("2", 1, "nginx:1", nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := healed(k, tc.out, tc.live, nil); got != tc.want {
				t.Errorf("healed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestNoFalseDriftUnderHPA: a Deployment whose replicas the bundle leaves
// to an HPA. The HPA controller scaling it (through the scale subresource,
// as kube-controller-manager) is not drift: the agent looks at each change
// (its checks counter moves) and counts no drift and no self-heal.
func TestNoFalseDriftUnderHPA(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	reg := prometheus.NewRegistry()
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, Registerer: reg})
	d := deployment("web", 1, nil)
	unstructured.RemoveNestedField(d.Object, "spec", "replicas")
	accept(t, e, bundle(t, "hpa", ns, auto(true, true), nil, d))
	waitStatus(t, e, "hpa", 20*time.Second, synced)
	base := gathered(t, reg)
	for i, n := range []int64{3, 5, 2} {
		before := gathered(t, reg)["flotilla_agent_drift_checks_total"]
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
		if _, err := dyn.Resource(gvrDeploy).Namespace(ns).Patch(context.Background(), "web", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kube-controller-manager"}, "scale"); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 20*time.Second, func(context.Context) (bool, string) {
			got := gathered(t, reg)["flotilla_agent_drift_checks_total"]
			return got > before, fmt.Sprintf("scale %d: the agent has not looked at the change (checks %v)", i, got)
		})
		if replicas(t, ns, "web") != n {
			t.Fatalf("replicas = %d after scaling to %d: the agent reverted the HPA", replicas(t, ns, "web"), n)
		}
	}
	after := gathered(t, reg)
	for _, m := range []string{"flotilla_agent_drift_events_total", "flotilla_agent_self_heal_total"} {
		if after[m] != base[m] {
			t.Errorf("%s went from %v to %v with no out-of-band change to a field the bundle sets", m, base[m], after[m])
		}
	}
}
