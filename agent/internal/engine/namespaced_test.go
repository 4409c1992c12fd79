//go:build !unit

package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

var (
	gvrRole        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	gvrRoleBinding = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
)

// namespacedUser returns the config of a new user with full control of the
// given namespaces and nothing cluster-wide (as deploy/agent/namespaced
// without its cluster-wide read role).
func namespacedUser(t *testing.T, name string, namespaces ...string) *rest.Config {
	t.Helper()
	cfg, err := testEnv.AddUser(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		mustCreate(t, gvrRole, ns, testenv.Obj(map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": map[string]any{"name": name},
			"rules": []any{map[string]any{"apiGroups": []any{"*"}, "resources": []any{"*"}, "verbs": []any{"*"}}},
		}))
		mustCreate(t, gvrRoleBinding, ns, testenv.Obj(map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": map[string]any{"name": name},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
			"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}},
		}))
	}
	return cfg
}

func inNamespace(o *unstructured.Unstructured, ns string) *unstructured.Unstructured {
	o.SetNamespace(ns)
	return o
}

// An agent limited to namespaces works with RBAC on those namespaces only:
// it syncs and self-heals there (watching per namespace), and refuses, with
// nothing written, a bundle with an object elsewhere or a cluster-scoped
// object, naming it.
func TestNamespacedAgent(t *testing.T) {
	teamA, agentNS := testNamespaces(t)
	teamB, outside := teamA+"-b", teamA+"-out"
	for _, ns := range []string{teamB, outside} {
		mustCreate(t, gvrNamespace, "", testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}))
	}
	cfg := namespacedUser(t, "agent-"+teamA, teamA, teamB, agentNS)
	e, _ := runEngineWith(t, cfg, Options{Namespace: agentNS, Namespaces: []string{teamB, " " + teamA, teamA}})

	// CreateNamespace=true is harmless: the namespace exists, nothing is
	// created or read cluster-wide.
	accept(t, e, bundle(t, "team", teamA, auto(true, true, "CreateNamespace=true"), nil,
		configMap("settings", map[string]any{"k": "v"}), inNamespace(deployment("web", 2, nil), teamB)))
	waitStatus(t, e, "team", 20*time.Second, synced)
	scale(t, teamB, "web", 5)
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		return replicas(t, teamB, "web") == 2, "replicas in the second namespace not reverted"
	})

	for _, tc := range []struct {
		app  string
		objs []*unstructured.Unstructured
		want []string
	}{
		{
			app:  "elsewhere",
			objs: []*unstructured.Unstructured{configMap("a", nil), inNamespace(configMap("b", nil), outside)},
			want: []string{"nothing was applied", "/ConfigMap " + outside + "/b", "forbidden for this agent", "namespace " + outside + " is not one of its namespaces"},
		},
		{
			app: "clusterwide",
			objs: []*unstructured.Unstructured{configMap("c", nil), testenv.Obj(map[string]any{
				"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "reader-" + teamA},
			})},
			want: []string{"rbac.authorization.k8s.io/ClusterRole /reader-" + teamA, "forbidden for this agent", "cluster-scoped"},
		},
	} {
		b := bundle(t, tc.app, teamA, auto(true, true), nil, tc.objs...)
		accept(t, e, b)
		st := waitStatus(t, e, tc.app, 20*time.Second, failedOn(b.GetDigest()))
		for _, want := range tc.want {
			if !strings.Contains(st.GetMessage(), want) {
				t.Errorf("app %s: message does not mention %q: %s", tc.app, want, st.GetMessage())
			}
		}
		for _, o := range tc.objs {
			if o.GetKind() != "ConfigMap" {
				continue
			}
			if _, ok := get(t, gvrConfigMap, teamA, o.GetName()); ok {
				t.Errorf("app %s: ConfigMap %s/%s written though the bundle was refused", tc.app, teamA, o.GetName())
			}
		}
	}
	if st := statusOf(e, "team"); st.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
		t.Errorf("app team: %v", st)
	}
}
