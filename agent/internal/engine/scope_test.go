//go:build !unit

package engine

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestScopeRefusesClusterScopedCustomKind: the hub cannot know that a
// custom kind whose CRD is not in the bundle is cluster-scoped; the agent
// does, and refuses the whole bundle when the app's scope does not allow
// cluster-scoped objects. With the scope widened, the same objects apply.
func TestScopeRefusesClusterScopedCustomKind(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	group := "gadgets-" + ns + ".example.com"
	def := crd(group, "Gadget", "gadgets")
	def["spec"].(map[string]any)["scope"] = "Cluster"
	mustCreate(t, schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, "", testenv.Obj(def))
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "gadgets"}
	e := startEngine(t, agentNS)

	objs := func() []*unstructured.Unstructured {
		return []*unstructured.Unstructured{testenv.Obj(map[string]any{"apiVersion": group + "/v1", "kind": "Gadget", "metadata": map[string]any{"name": "g-" + ns}}), configMap("cm", map[string]any{"k": "v"})}
	}
	policy := func(s *apiv1alpha1.Scope) *apiv1alpha1.SyncPolicy {
		p := auto(true, true)
		p.Scope = s
		return p
	}
	accept(t, e, bundle(t, "gadgets", ns, policy(&apiv1alpha1.Scope{}), nil, objs()...))
	st := waitStatus(t, e, "gadgets", 30*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return strings.Contains(s.GetMessage(), "outside the app's scope")
	})
	for _, want := range []string{"Gadget", "g-" + ns, "cluster-scoped", "spec.scope.clusterScoped"} {
		if !strings.Contains(st.GetMessage(), want) {
			t.Errorf("message %q does not say %q", st.GetMessage(), want)
		}
	}
	if _, ok := get(t, gvr, "", "g-"+ns); ok {
		t.Error("the cluster-scoped Gadget was created although the scope refuses it")
	}
	if _, ok := get(t, gvrConfigMap, ns, "cm"); ok {
		t.Error("the ConfigMap was created: a bundle with a refused object must apply nothing")
	}

	accept(t, e, bundle(t, "gadgets", ns, policy(&apiv1alpha1.Scope{ClusterScoped: true}), nil, objs()...))
	waitStatus(t, e, "gadgets", 30*time.Second, synced)
	if _, ok := get(t, gvr, "", "g-"+ns); !ok {
		t.Error("the Gadget was not created once the scope allows cluster-scoped objects")
	}
}
