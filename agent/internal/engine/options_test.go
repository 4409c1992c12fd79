//go:build !unit

package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func withSelector(d *unstructured.Unstructured, label string) *unstructured.Unstructured {
	d = d.DeepCopy()
	_ = unstructured.SetNestedStringMap(d.Object, map[string]string{"app": label}, "spec", "selector", "matchLabels")
	_ = unstructured.SetNestedStringMap(d.Object, map[string]string{"app": label}, "spec", "template", "metadata", "labels")
	return d
}

func TestImmutableFieldChange(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	retry := &apiv1alpha1.Retry{Limit: 0}
	pol := auto(true, true)
	pol.Retry = retry
	accept(t, e, bundle(t, "web", ns, pol, nil, deployment("web", 1, nil)))
	waitStatus(t, e, "web", 20*time.Second, synced)

	changed := bundle(t, "web", ns, pol, nil, withSelector(deployment("web", 1, nil), "web-v2"))
	accept(t, e, changed)
	st := waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetDigest() == changed.GetDigest() && s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	for _, want := range []string{"apps/Deployment " + ns + "/web", "spec.selector", "immutable", "Replace=true"} {
		if !strings.Contains(st.GetMessage(), want) {
			t.Errorf("message %q does not mention %q", st.GetMessage(), want)
		}
	}
	old, _ := get(t, gvrDeploy, ns, "web")

	// With Replace=true the object is deleted and re-created.
	pol2 := auto(true, true, "Replace=true")
	replaced := bundle(t, "web", ns, pol2, nil, withSelector(deployment("web", 1, nil), "web-v2"))
	accept(t, e, replaced)
	waitStatus(t, e, "web", 30*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == replaced.GetDigest() })
	d, _ := get(t, gvrDeploy, ns, "web")
	if d.GetUID() == old.GetUID() {
		t.Error("deployment was not re-created")
	}
	if sel, _, _ := unstructured.NestedString(d.Object, "spec", "selector", "matchLabels", "app"); sel != "web-v2" {
		t.Errorf("selector = %q, want web-v2", sel)
	}
}

func TestManualSyncAppliesOnlyOnCommand(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "manual", ns, &apiv1alpha1.SyncPolicy{}, nil, configMap("m", map[string]any{"a": "1"})))
	st := waitStatus(t, e, "manual", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
	})
	if st.GetLastOperation() != nil {
		t.Errorf("a manual app ran an operation: %v", st.GetLastOperation())
	}
	if _, ok := get(t, gvrConfigMap, ns, "m"); ok {
		t.Fatal("manual app applied without a SYNC command")
	}
	res := e.Do(context.Background(), &apiv1alpha1.Command{Id: "c1", Type: apiv1alpha1.Command_TYPE_SYNC, App: "manual", InitiatedBy: "alice"})
	if !res.GetOk() || res.GetId() != "c1" {
		t.Fatalf("SYNC result %v", res)
	}
	st = waitStatus(t, e, "manual", 10*time.Second, synced)
	if st.GetLastOperation().GetInitiatedBy() != "alice" {
		t.Errorf("initiated_by = %q", st.GetLastOperation().GetInitiatedBy())
	}
	if _, ok := get(t, gvrConfigMap, ns, "m"); !ok {
		t.Fatal("SYNC did not apply")
	}
	if res := e.Do(context.Background(), &apiv1alpha1.Command{Id: "c2", Type: apiv1alpha1.Command_TYPE_SYNC, App: "nope"}); res.GetOk() {
		t.Errorf("SYNC of an unknown app succeeded: %v", res)
	}
}

func TestIgnoreDifferences(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	ignore := []*apiv1alpha1.IgnoreDifference{{Group: "apps", Kind: "Deployment", JsonPointers: []string{"/spec/replicas"}}}
	accept(t, e, bundle(t, "hpa", ns, auto(true, true), ignore, deployment("hpa", 2, nil), deployment("other", 2, nil)))
	waitStatus(t, e, "hpa", 20*time.Second, synced)

	scale(t, ns, "hpa", 4)
	// The scale is not reverted and the app stays Synced, while a change
	// to a field not ignored is healed.
	d, _ := get(t, gvrDeploy, ns, "hpa")
	_ = unstructured.SetNestedField(d.Object, "nginx:1.28", "spec", "template", "spec", "containers", "0", "image")
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}`)
	if _, err := dyn.Resource(gvrDeploy).Namespace(ns).Patch(context.Background(), "hpa", "application/strategic-merge-patch+json", patch, metaPatch("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		d, _ := get(t, gvrDeploy, ns, "hpa")
		c, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		img, _, _ := unstructured.NestedString(c[0].(map[string]any), "image")
		return img == "nginx:1.27", "image not healed: " + img
	})
	if r := replicas(t, ns, "hpa"); r != 4 {
		t.Errorf("replicas = %d, want 4 (ignored)", r)
	}
	waitStatus(t, e, "hpa", 10*time.Second, synced)
}

func TestManagedFieldsManagersIgnored(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	ignore := []*apiv1alpha1.IgnoreDifference{{Group: "apps", Kind: "Deployment", ManagedFieldsManagers: []string{"kubectl-scale"}}}
	accept(t, e, bundle(t, "mf", ns, auto(false, true), ignore, deployment("mf", 2, nil)))
	waitStatus(t, e, "mf", 20*time.Second, synced)
	scale(t, ns, "mf", 3)
	res := e.Do(context.Background(), &apiv1alpha1.Command{Id: "r", Type: apiv1alpha1.Command_TYPE_REFRESH, App: "mf"})
	if !res.GetOk() {
		t.Fatal(res)
	}
	st := statusOf(e, "mf")
	if st.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
		t.Errorf("status = %v, want Synced (replicas belong to an ignored manager)", st)
	}
}
