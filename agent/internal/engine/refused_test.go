//go:build !unit

package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestRefusedSelfHeal: an admission policy refuses every update of a
// ConfigMap someone marked locked, so the agent cannot put the drifted
// value back. The object is reported Degraded with the API server's
// message on one line (no retry loop); once the policy goes, the next
// retry of the backoff heals it.
func TestRefusedSelfHeal(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	ctx := context.Background()
	vap := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	binding := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
	name := "locked-" + ns
	mustCreate(t, vap, "", testenv.Obj(map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"failurePolicy":    "Fail",
			"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"UPDATE"}, "resources": []any{"configmaps"}}}},
			"matchConditions":  []any{map[string]any{"name": "this-test", "expression": "request.namespace == '" + ns + "'"}},
			"validations": []any{map[string]any{
				"expression": "!(has(oldObject.data) && 'locked' in oldObject.data && oldObject.data['locked'] == 'true')",
				"message":    "this ConfigMap is locked by the policy",
			}},
		},
	}))
	mustCreate(t, binding, "", testenv.Obj(map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"policyName": name, "validationActions": []any{"Deny"}},
	}))
	t.Cleanup(func() {
		_ = dyn.Resource(binding).Delete(ctx, name, metav1.DeleteOptions{})
		_ = dyn.Resource(vap).Delete(ctx, name, metav1.DeleteOptions{})
	})
	// The policy is enforced once a locked probe can no longer change.
	mustCreate(t, gvrConfigMap, ns, configMap("probe", map[string]any{"locked": "true"}))
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
		_, err := dyn.Resource(gvrConfigMap).Namespace(ns).Patch(ctx, "probe", types.MergePatchType, []byte(`{"data":{"x":"`+time.Now().String()+`"}}`), metaPatch("probe"))
		return err != nil, "the admission policy is not enforced yet"
	})

	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "locked", ns, auto(true, true), nil, configMap("settings", map[string]any{"a": "1"})))
	waitStatus(t, e, "locked", 20*time.Second, synced)
	if _, err := dyn.Resource(gvrConfigMap).Namespace(ns).Patch(ctx, "settings", types.MergePatchType, []byte(`{"data":{"a":"2","locked":"true"}}`), metaPatch("someone")); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, e, "locked", 30*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		o := objectStatus(s, "ConfigMap", "settings")
		return o.GetHealth() == apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED
	})
	o := objectStatus(st, "ConfigMap", "settings")
	if !strings.Contains(o.GetMessage(), "self-heal refused") || !strings.Contains(o.GetMessage(), "this ConfigMap is locked by the policy") || strings.Contains(o.GetMessage(), "\n") {
		t.Errorf("object message %q: want the refusal on one line", o.GetMessage())
	}
	if st.GetHealth() != apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED {
		t.Errorf("app health %v, want Degraded", st.GetHealth())
	}

	if err := dyn.Resource(binding).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "locked", 60*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return synced(s) && objectStatus(s, "ConfigMap", "settings").GetHealth() == apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY
	})
	got, _ := get(t, gvrConfigMap, ns, "settings")
	if v, _, _ := unstructured.NestedString(got.Object, "data", "a"); v != "1" {
		t.Errorf("data.a = %q after the policy went, want 1", v)
	}
}
