package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flotilla-cd/flotilla/deploy/internal/manifests"
)

// TestHAPolicy checks the highly available hub as kustomize and Helm render
// it: three replicas replaced one at a time, spread over nodes, a
// PodDisruptionBudget keeping two, the store's CRDs, the kubernetes store
// selected, and RBAC in the hub's namespace only that covers every
// resource of the store and nothing cluster-wide; no state claim.
func TestHAPolicy(t *testing.T) {
	crds, err := manifests.File(filepath.Join("crds", "hub-store.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var plurals []string
	for _, c := range crds {
		p, _, _ := unstructured.NestedString(c.Object, "spec", "names", "plural")
		plurals = append(plurals, p)
	}
	checked := 0
	for name, objs := range renderAll(t) {
		if !isHA(name) {
			continue
		}
		checked++
		d := deployments(t, objs)["flotilla-hub"]
		if d == nil {
			t.Fatalf("%s: no Deployment flotilla-hub", name)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
			t.Errorf("%s: replicas %v, want 3", name, d.Spec.Replicas)
		}
		ru := d.Spec.Strategy.RollingUpdate
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 {
			t.Errorf("%s: strategy %+v, want RollingUpdate with maxUnavailable 1", name, d.Spec.Strategy)
		}
		aff := d.Spec.Template.Spec.Affinity
		if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
			aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname {
			t.Errorf("%s: affinity %+v, want replicas spread over nodes", name, aff)
		}
		var kinds, roleResources []string
		store := false
		for _, o := range objs {
			kinds = append(kinds, o.GetKind())
			switch o.GetKind() {
			case "ClusterRole", "ClusterRoleBinding", "PersistentVolumeClaim":
				t.Errorf("%s: %s %s: the HA hub has namespaced RBAC only and no state claim", name, o.GetKind(), o.GetName())
			case "PodDisruptionBudget":
				var pdb policyv1.PodDisruptionBudget
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &pdb); err != nil {
					t.Fatal(err)
				}
				if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "flotilla-hub" {
					t.Errorf("%s: PodDisruptionBudget %+v, want minAvailable 2 of the hub", name, pdb.Spec)
				}
			case "Role":
				var r rbacv1.Role
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
					t.Fatal(err)
				}
				for _, rule := range r.Rules {
					if slices.Contains(rule.APIGroups, "hub.flotilla.dev") {
						roleResources = append(roleResources, rule.Resources...)
					}
				}
			case "ConfigMap":
				if v, _, _ := unstructured.NestedString(o.Object, "data", "FLOTILLA_STORE"); v == "kubernetes" && strings.HasPrefix(o.GetName(), "flotilla-hub") {
					store = true
				}
			}
		}
		for _, k := range []string{"PodDisruptionBudget", "Role", "RoleBinding", "CustomResourceDefinition"} {
			if !slices.Contains(kinds, k) {
				t.Errorf("%s: no %s", name, k)
			}
		}
		if d := cmp.Diff(sorted(plurals), sorted(roleResources)); d != "" {
			t.Errorf("%s: the Role's hub.flotilla.dev resources are not the store's CRDs (-crds +role):\n%s", name, d)
		}
		if !store {
			t.Errorf("%s: FLOTILLA_STORE=kubernetes not set in the hub's ConfigMap", name)
		}
	}
	if checked != 2 {
		t.Errorf("checked %d HA renderings, want kustomize and Helm", checked)
	}
	// The chart ships the same CRDs as deploy/crds.
	a, err := os.ReadFile(filepath.Join("crds", "hub-store.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("helm", "flotilla", "files", "hub-store-crds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("helm/flotilla/files/hub-store-crds.yaml differs from crds/hub-store.yaml; copy it")
	}
}

// TestHAHelmMatchesKustomize: the chart's hub.ha and deploy/hub-ha run the
// same pod and make the same objects.
func TestHAHelmMatchesKustomize(t *testing.T) {
	all := renderAll(t)
	k, h := deployments(t, all["kustomize hub-ha"])["flotilla-hub"], deployments(t, all["helm hub ha"])["flotilla-hub"]
	if d := cmp.Diff(normalizePod(k.Spec.Template.Spec), normalizePod(h.Spec.Template.Spec)); d != "" {
		t.Errorf("pod spec (-kustomize +helm):\n%s", d)
	}
	if d := cmp.Diff(k.Spec.Strategy, h.Spec.Strategy); d != "" {
		t.Errorf("strategy (-kustomize +helm):\n%s", d)
	}
	ids := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, o := range objs {
			if o.GetKind() == "Namespace" {
				continue
			}
			out = append(out, o.GetKind()+" "+o.GetNamespace()+"/"+hashSuffix.ReplaceAllString(o.GetName(), ""))
		}
		return sorted(out)
	}
	if d := cmp.Diff(ids(all["kustomize hub-ha"]), ids(all["helm hub ha"])); d != "" {
		t.Errorf("objects (-kustomize +helm):\n%s", d)
	}
}
