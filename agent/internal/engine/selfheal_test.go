//go:build !unit

package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func TestSelfHealRevertsScale(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil), service("web")))
	waitStatus(t, e, "web", 20*time.Second, synced)

	d, _ := get(t, gvrDeploy, ns, "web")
	if got := d.GetAnnotations()[manifest.TrackingAnnotation]; got != "web:apps/Deployment:"+ns+"/web" {
		t.Errorf("tracking annotation = %q", got)
	}
	if r := replicas(t, ns, "web"); r != 2 {
		t.Fatalf("replicas after sync = %d, want 2", r)
	}
	scale(t, ns, "web", 5)
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		r := replicas(t, ns, "web")
		return r == 2, "replicas still " + string(rune('0'+r))
	})
	waitStatus(t, e, "web", 10*time.Second, synced)
}

func TestDriftWithoutSelfHealIsReported(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "web", ns, auto(false, true), nil, deployment("web", 2, nil)))
	waitStatus(t, e, "web", 20*time.Second, synced)

	scale(t, ns, "web", 5)
	st := waitStatus(t, e, "web", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
	})
	o := objectStatus(st, "Deployment", "web")
	if o.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC || !strings.Contains(o.GetDiff(), "replicas: 5") || !strings.Contains(o.GetDiff(), "replicas: 2") {
		t.Fatalf("object status = %v, want OutOfSync with a replicas diff", o)
	}
	// Nothing is reverted: give the agent time it would need to heal.
	res := e.Do(context.Background(), &apiv1alpha1.Command{Id: "1", Type: apiv1alpha1.Command_TYPE_REFRESH, App: "web"})
	if !res.GetOk() {
		t.Fatalf("refresh: %v", res)
	}
	if r := replicas(t, ns, "web"); r != 5 {
		t.Fatalf("replicas = %d, want 5 (alert-only mode reverts nothing)", r)
	}
	d := e.Do(context.Background(), &apiv1alpha1.Command{Id: "2", Type: apiv1alpha1.Command_TYPE_DIFF, App: "web"})
	if !d.GetOk() || !strings.Contains(d.GetDiff(), "replicas: 5") {
		t.Fatalf("DIFF = %v", d)
	}
	// A SYNC command reverts it.
	if res := e.Do(context.Background(), &apiv1alpha1.Command{Id: "3", Type: apiv1alpha1.Command_TYPE_SYNC, App: "web"}); !res.GetOk() {
		t.Fatalf("sync: %v", res)
	}
	if r := replicas(t, ns, "web"); r != 2 {
		t.Fatalf("replicas after SYNC = %d, want 2", r)
	}
}

func TestSelfHealRestoresTrackingAndLabel(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "cfg", ns, auto(true, true), nil, configMap("c", map[string]any{"k": "v"})))
	waitStatus(t, e, "cfg", 20*time.Second, synced)
	for _, patch := range []string{
		`{"metadata":{"annotations":{"flotilla.dev/tracking-id":null}}}`,
		`{"metadata":{"labels":{"flotilla.dev/managed":null}}}`,
	} {
		if _, err := dyn.Resource(gvrConfigMap).Namespace(ns).Patch(context.Background(), "c", "application/merge-patch+json", []byte(patch), metaPatch("someone")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
			c, _ := get(t, gvrConfigMap, ns, "c")
			return c.GetAnnotations()[manifest.TrackingAnnotation] != "" && c.GetLabels()["flotilla.dev/managed"] == "true",
				"not restored after " + patch
		})
	}
}
