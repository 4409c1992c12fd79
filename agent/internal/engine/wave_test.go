//go:build !unit

package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// markAvailable writes the status a deployment controller writes once every
// replica is available (this control plane runs no controllers).
func markAvailable(t testing.TB, ns, name string) {
	t.Helper()
	d, ok := get(t, gvrDeploy, ns, name)
	if !ok {
		t.Fatalf("deployment %s/%s missing", ns, name)
	}
	r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
	patch := fmt.Appendf(nil, `{"status":{"observedGeneration":%d,"replicas":%d,"updatedReplicas":%d,"readyReplicas":%d,"availableReplicas":%d,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable","lastUpdateTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"},{"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable","lastUpdateTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`,
		d.GetGeneration(), r, r, r, r)
	if _, err := dyn.Resource(gvrDeploy).Namespace(ns).Patch(context.Background(), name, "application/merge-patch+json", patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("patch status of %s/%s: %v", ns, name, err)
	}
}

func TestWaveWaitsForDeploymentAvailable(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	db := deployment("db", 1, map[string]any{manifest.ArgoSyncWaveAnnotation: "-1"})
	after := configMap("after-db", map[string]any{"x": "1"})
	after.SetAnnotations(map[string]string{manifest.SyncWaveAnnotation: "1"})
	accept(t, e, bundle(t, "waves", ns, auto(true, true), nil, after, db, service("db")))

	// The first wave is applied and the app waits on it.
	st := waitStatus(t, e, "waves", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_RUNNING &&
			objectStatus(s, "Deployment", "db").GetHealth() == apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING
	})
	for _, o := range []struct {
		gvr  string
		name string
	}{{"configmaps", "after-db"}, {"services", "db"}} {
		gvr := gvrConfigMap
		if o.gvr == "services" {
			gvr = gvrService
		}
		if _, ok := get(t, gvr, ns, o.name); ok {
			t.Fatalf("%s %s of a later wave applied before wave -1 was healthy; status %v", o.gvr, o.name, st)
		}
	}
	// Drift on an object of a finished wave is healed during the wait.
	scale(t, ns, "db", 5)
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		return replicas(t, ns, "db") == 1, "db not healed while the sync waits"
	})
	markAvailable(t, ns, "db")
	st = waitStatus(t, e, "waves", 20*time.Second, synced)
	if st.GetHealth() != apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY {
		t.Errorf("app health = %v, want Healthy", st.GetHealth())
	}
	if _, ok := get(t, gvrConfigMap, ns, "after-db"); !ok {
		t.Fatal("wave 1 not applied after wave -1 became healthy")
	}
	if _, ok := get(t, gvrService, ns, "db"); !ok {
		t.Fatal("wave 0 not applied after wave -1 became healthy")
	}
}

func TestNewBundleSupersedesWaitingSync(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	after := configMap("after", nil)
	after.SetAnnotations(map[string]string{manifest.SyncWaveAnnotation: "1"})
	accept(t, e, bundle(t, "app", ns, auto(true, true), nil, deployment("never-ready", 1, nil), after))
	waitStatus(t, e, "app", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_RUNNING
	})
	next := bundle(t, "app", ns, auto(true, true), nil, configMap("after", nil))
	accept(t, e, next)
	waitStatus(t, e, "app", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == next.GetDigest() })
	if _, ok := get(t, gvrDeploy, ns, "never-ready"); ok {
		t.Error("deployment of the superseded bundle not pruned")
	}
}
