//go:build !unit

package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// These tests change objects the way kubectl does, with kubectl's field
// managers, against a real API server.

// TestServicePortPatchReverted: `kubectl patch svc --type=json` replacing
// spec.ports[0].port. The ports list is a map keyed by port and protocol,
// so a plain server-side apply of the bundle would add port 80 beside the
// patched entry, and the API server refuses two unnamed ports: self-heal
// failed for ever. The agent takes the patched entry over, the apply
// replaces it, and the app is Synced with the one port of the bundle.
func TestServicePortPatchReverted(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "svc", ns, auto(true, true), nil, service("web")))
	waitStatus(t, e, "svc", 20*time.Second, synced)

	patch := []byte(`[{"op":"replace","path":"/spec/ports/0/port","value":8081}]`)
	if _, err := dyn.Resource(gvrService).Namespace(ns).Patch(context.Background(), "web", types.JSONPatchType, patch, metaPatch("kubectl-patch")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
		svc, _ := get(t, gvrService, ns, "web")
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		if len(ports) != 1 {
			return false, fmt.Sprintf("ports %v", ports)
		}
		port, _, _ := unstructured.NestedInt64(ports[0].(map[string]any), "port")
		return port == 80, fmt.Sprintf("port %d", port)
	})
	waitStatus(t, e, "svc", 20*time.Second, synced)
}

// TestContainerRenameReverted: `kubectl edit` renaming the container of a
// Deployment (containers are a list keyed by name): without taking the
// edited entry over, the apply puts the bundle's container back beside the
// renamed one. The Deployment ends with the bundle's one container.
func TestContainerRenameReverted(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "edit", ns, auto(true, true), nil, deployment("web", 1, nil)))
	waitStatus(t, e, "edit", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED
	})
	d, _ := get(t, gvrDeploy, ns, "web")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["name"] = "renamed"
	if err := unstructured.SetNestedSlice(d.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(gvrDeploy).Namespace(ns).Update(context.Background(), d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
		d, _ := get(t, gvrDeploy, ns, "web")
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		var names []string
		for _, c := range cs {
			names = append(names, c.(map[string]any)["name"].(string))
		}
		return len(names) == 1 && names[0] == "web", fmt.Sprintf("containers %v", names)
	})
}

// TestFieldDroppedFromGitOnKubectlAppliedObject: an object first created
// by `kubectl apply` (client-side: manager kubectl-client-side-apply and
// the last-applied annotation) is adopted by an app; a field later removed
// from git disappears from the cluster instead of staying with kubectl's
// ownership.
func TestFieldDroppedFromGitOnKubectlAppliedObject(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	cm := configMap("settings", map[string]any{"keep": "1", "drop": "2"})
	cm.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"` + ns + `"},"data":{"drop":"2","keep":"1"}}`})
	if _, err := dyn.Resource(gvrConfigMap).Namespace(ns).Create(context.Background(), cm, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "adopt", ns, auto(true, true), nil, configMap("settings", map[string]any{"keep": "1", "drop": "2"})))
	waitStatus(t, e, "adopt", 20*time.Second, synced)

	second := bundle(t, "adopt", ns, auto(true, true), nil, configMap("settings", map[string]any{"keep": "1"}))
	accept(t, e, second)
	waitStatus(t, e, "adopt", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == second.GetDigest() })
	got, _ := get(t, gvrConfigMap, ns, "settings")
	data, _, _ := unstructured.NestedStringMap(got.Object, "data")
	if _, ok := data["drop"]; ok || data["keep"] != "1" {
		t.Errorf("data %v, want only keep (drop was removed from git)", data)
	}
	for _, m := range got.GetManagedFields() {
		if m.Manager == "kubectl-client-side-apply" {
			t.Errorf("kubectl-client-side-apply still manages fields: %+v", m)
		}
	}
}
