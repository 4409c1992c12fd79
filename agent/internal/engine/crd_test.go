//go:build !unit

package engine

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func crd(group, kind, plural string) map[string]any {
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"kind": kind, "plural": plural, "singular": strings.ToLower(kind), "listKind": kind + "List"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type": "object", "properties": map[string]any{"size": map[string]any{"type": "integer", "default": int64(3)}, "color": map[string]any{"type": "string"}},
					}},
				}},
			}},
		},
	}
}

func TestCRDAndCustomResourceInOneBundle(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	group := "widgets-" + ns + ".example.com"
	def := testenv.Obj(crd(group, "Widget", "widgets"))
	cr := testenv.Obj(map[string]any{
		"apiVersion": group + "/v1", "kind": "Widget", "metadata": map[string]any{"name": "w1"},
		"spec": map[string]any{"color": "blue"},
	})
	// The CR comes first in the bundle's canonical order; the plan must
	// still apply the CRD first.
	accept(t, e, bundle(t, "widgets", ns, auto(true, true), nil, cr, def))
	st := waitStatus(t, e, "widgets", 30*time.Second, synced)
	if st.GetHealth() != apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY {
		t.Errorf("health = %v, want Healthy", st.GetHealth())
	}
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	w, ok := get(t, gvr, ns, "w1")
	if !ok {
		t.Fatal("widget not created")
	}
	// The server default (size: 3) is not drift.
	if size, _, _ := nestedInt(w.Object, "spec", "size"); size != 3 {
		t.Errorf("size = %d, want the server default 3", size)
	}
	if o := objectStatus(st, "Widget", "w1"); o.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
		t.Errorf("widget status = %v", o)
	}
}
