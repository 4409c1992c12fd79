//go:build !unit

package engine

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/policy"
	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestAgentRefusesItsOwnObjects: whatever the hub sends, and although the
// cluster's policy (a ConfigMap, read as the agent reads it) allows the
// agent's namespace, a bundle that would write the agent's policy
// ConfigMap, a Role or RoleBinding in its namespace, its ServiceAccount or
// its Deployment is refused whole, naming the object, and the live objects
// are unchanged. Other objects in the agent's namespace still apply.
func TestAgentRefusesItsOwnObjects(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	mustCreate(t, gvrConfigMap, agentNS, testenv.Obj(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "flotilla-agent-policy"},
		"data": map[string]any{"denyKinds": "rbac.authorization.k8s.io/ClusterRoleBinding"},
	}))
	set := policy.NewSet()
	set.Protect(policy.Self{Namespace: agentNS, Name: "flotilla-agent", PolicyConfigMap: "flotilla-agent-policy", IdentitySecret: "flotilla-agent-identity"})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := policy.WatchConfigMap(ctx, dyn, agentNS, "flotilla-agent-policy", set, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr})); err != nil {
		t.Fatal(err)
	}
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, Policy: set})

	sa := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "flotilla-agent"}})
	roleBinding := testenv.Obj(map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": map[string]any{"name": "more"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "flotilla-agent", "namespace": agentNS}},
	})
	gvrSA := schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	for _, tc := range []struct {
		app  string
		obj  *unstructured.Unstructured
		gvr  schema.GroupVersionResource
		want string
	}{
		{"policy", configMap("flotilla-agent-policy", map[string]any{"denyKinds": ""}), gvrConfigMap,
			"/ConfigMap " + agentNS + "/flotilla-agent-policy: refused by the cluster's policy: it is the agent's policy ConfigMap, which no bundle may write"},
		{"rbac", roleBinding, gvrRoleBinding,
			"rbac.authorization.k8s.io/RoleBinding " + agentNS + "/more: refused by the cluster's policy: it is RBAC in the agent's own namespace " + agentNS},
		{"sa", sa, gvrSA, "/ServiceAccount " + agentNS + "/flotilla-agent: refused by the cluster's policy: it is the agent's own ServiceAccount"},
		{"deploy", deployment("flotilla-agent", 1, nil), gvrDeploy, "apps/Deployment " + agentNS + "/flotilla-agent: refused by the cluster's policy: it is the agent's own Deployment"},
	} {
		// With an innocent object in the app's own namespace: the whole
		// bundle is refused.
		b := bundle(t, tc.app, ns, auto(true, true), nil, configMap("innocent-"+tc.app, nil), inNamespace(tc.obj, agentNS))
		accept(t, e, b)
		st := waitStatus(t, e, tc.app, 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
			return strings.Contains(s.GetMessage(), "refused by the cluster's policy")
		})
		if !strings.Contains(st.GetMessage(), tc.want) {
			t.Errorf("app %s: message %q does not say %q", tc.app, st.GetMessage(), tc.want)
		}
		if _, ok := get(t, gvrConfigMap, ns, "innocent-"+tc.app); ok {
			t.Errorf("app %s: ConfigMap innocent-%s written though the bundle was refused", tc.app, tc.app)
		}
		live, ok := get(t, tc.gvr, agentNS, tc.obj.GetName())
		switch {
		case tc.app == "policy":
			if d, _, _ := unstructured.NestedStringMap(live.Object, "data"); d["denyKinds"] != "rbac.authorization.k8s.io/ClusterRoleBinding" {
				t.Errorf("the policy ConfigMap was rewritten: %v", d)
			}
		case ok:
			t.Errorf("app %s: %s %s/%s was created", tc.app, tc.obj.GetKind(), agentNS, tc.obj.GetName())
		}
	}

	// Another ConfigMap and ServiceAccount in the agent's namespace are
	// not the agent's own.
	other := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "web"}})
	accept(t, e, bundle(t, "neighbour", agentNS, auto(true, true), nil, configMap("settings", map[string]any{"k": "v"}), other))
	waitStatus(t, e, "neighbour", 20*time.Second, synced)
}
