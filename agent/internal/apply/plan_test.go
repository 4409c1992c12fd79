package apply

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func obj(apiVersion, kind, ns, name string, ann map[string]string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if ns != "" {
		o.SetNamespace(ns)
	}
	if ann != nil {
		o.SetAnnotations(ann)
	}
	return o
}

var builtinScope ScopeFunc = func(gk schema.GroupKind) (bool, error) {
	switch gk.Kind {
	case "ClusterRole", "Namespace", "CustomResourceDefinition":
		return false, nil
	case "ConfigMap", "Deployment", "Service":
		return true, nil
	}
	return false, fmt.Errorf("no matches for kind %s", gk)
}

// render lists a plan as "wave/phase: kind ns/name" lines.
func render(waves []Wave) []string {
	var out []string
	for _, w := range waves {
		for _, s := range w.Steps {
			for _, o := range s.Objects {
				out = append(out, fmt.Sprintf("%d/%s: %s %s/%s", w.Wave, s.Phase, o.GetKind(), o.GetNamespace(), o.GetName()))
			}
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	crd := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com", nil)
	crd.Object["spec"] = map[string]any{"group": "example.com", "scope": "Namespaced", "names": map[string]any{"kind": "Widget"}}
	tests := []struct {
		name    string
		objs    []*unstructured.Unstructured
		want    []string
		wantErr bool
	}{
		{
			name: "kinds in order, default namespace, cluster-scoped lose namespace",
			objs: []*unstructured.Unstructured{
				obj("apps/v1", "Deployment", "", "web", nil),
				obj("example.com/v1", "Widget", "other", "w", nil),
				obj("rbac.authorization.k8s.io/v1", "ClusterRole", "stray", "reader", nil),
				crd,
				obj("v1", "Namespace", "", "app", nil),
			},
			want: []string{
				"0/namespaces: Namespace /app",
				"0/crds: CustomResourceDefinition /widgets.example.com",
				"0/cluster-scoped: ClusterRole /reader",
				"0/namespaced: Deployment app/web",
				"0/namespaced: Widget other/w",
			},
		},
		{
			name: "waves from both annotations, flotilla first",
			objs: []*unstructured.Unstructured{
				obj("v1", "ConfigMap", "", "late", map[string]string{manifest.SyncWaveAnnotation: "5", manifest.ArgoSyncWaveAnnotation: "-5"}),
				obj("v1", "ConfigMap", "", "early", map[string]string{manifest.ArgoSyncWaveAnnotation: "-1"}),
				obj("v1", "Namespace", "", "app", map[string]string{manifest.SyncWaveAnnotation: "1"}),
				obj("v1", "Service", "", "mid", nil),
			},
			want: []string{
				"-1/namespaced: ConfigMap app/early",
				"0/namespaced: Service app/mid",
				"1/namespaces: Namespace /app",
				"5/namespaced: ConfigMap app/late",
			},
		},
		{
			name:    "bad wave",
			objs:    []*unstructured.Unstructured{obj("v1", "ConfigMap", "", "x", map[string]string{manifest.SyncWaveAnnotation: "soon"})},
			wantErr: true,
		},
		{
			name:    "unknown kind",
			objs:    []*unstructured.Unstructured{obj("example.com/v1", "Gadget", "", "x", nil)},
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			waves, err := Plan(tc.objs, "app", BundleScope(tc.objs, builtinScope))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Plan() error = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, render(waves)); diff != "" {
				t.Errorf("Plan() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	got := ParseSyncOptions([]string{"CreateNamespace=true", "PruneLast=true", "Replace=false", " Force = true ", "Unknown=true", "SkipDryRunOnMissingResource=true", "PrunePropagationPolicy=Orphan"})
	want := SyncOptions{CreateNamespace: true, PruneLast: true, Force: true, SkipDryRunOnMissingResource: true, PrunePropagation: metav1.DeletePropagationOrphan}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseSyncOptions (-want +got):\n%s", diff)
	}
	if got := ParseSyncOptions(nil).PrunePropagation; got != metav1.DeletePropagationBackground {
		t.Errorf("default PrunePropagation = %q, want Background", got)
	}
	o := obj("v1", "ConfigMap", "", "x", map[string]string{
		manifest.SyncOptionsAnnotation:     "Prune=false,Replace=true",
		manifest.ArgoSyncOptionsAnnotation: "PruneLast=true,Delete=confirm,SkipDryRunOnMissingResource=true",
		ArgoCompareOptionsAnnotation:       "IgnoreExtraneous",
	})
	want2 := ObjectOptions{NoPrune: true, NoDelete: true, PruneLast: true, Replace: true, SkipDryRunOnMissingResource: true, IgnoreExtraneous: true}
	if diff := cmp.Diff(want2, ObjectOptionsOf(o)); diff != "" {
		t.Errorf("ObjectOptionsOf (-want +got):\n%s", diff)
	}
	o = obj("v1", "ConfigMap", "", "x", map[string]string{manifest.ArgoSyncOptionsAnnotation: "Prune=confirm"})
	if !ObjectOptionsOf(o).NoPrune {
		t.Error("Prune=confirm: the object would be pruned without the confirmation Flotilla cannot ask for")
	}
}

func TestPrepare(t *testing.T) {
	o := obj("apps/v1", "Deployment", "ns", "web", map[string]string{"keep": "me"})
	o.Object["metadata"].(map[string]any)["creationTimestamp"] = nil
	p := Prepare("shop", o)
	want := map[string]any{
		"name": "web", "namespace": "ns",
		"annotations": map[string]any{"keep": "me", manifest.TrackingAnnotation: "shop:apps/Deployment:ns/web"},
		"labels":      map[string]any{ManagedLabel: "true"},
	}
	if diff := cmp.Diff(want, p.Object["metadata"]); diff != "" {
		t.Errorf("Prepare metadata (-want +got):\n%s", diff)
	}
	if _, ok := o.GetAnnotations()[manifest.TrackingAnnotation]; ok {
		t.Error("Prepare modified its input")
	}
	if !OwnedBy("shop", p) || OwnedBy("other", p) {
		t.Error("OwnedBy does not follow the tracking id")
	}
}
