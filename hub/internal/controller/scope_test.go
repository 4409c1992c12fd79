package controller

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func objs(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range docs {
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func TestCheckScope(t *testing.T) {
	const (
		cm      = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
		cmOther = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team-b}\n"
		crb     = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: own-the-cluster}\n"
		crd     = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.x.io}\nspec: {group: x.io, scope: Cluster, names: {kind: Widget, plural: widgets}}\n"
		widget  = "apiVersion: x.io/v1\nkind: Widget\nmetadata: {name: w}\n"
		gadget  = "apiVersion: y.io/v1\nkind: Gadget\nmetadata: {name: g}\n"
	)
	for _, tc := range []struct {
		name  string
		docs  []string
		scope *apiv1alpha1.Scope
		want  []string // parts of the error; none: accepted
	}{
		{"own namespace", []string{cm, gadget}, &apiv1alpha1.Scope{}, nil},
		{"other namespace", []string{cm, cmOther}, &apiv1alpha1.Scope{}, []string{"ConfigMap team-b/c", "team-b", "spec.scope.namespaces"}},
		{"other namespace allowed", []string{cmOther}, &apiv1alpha1.Scope{Namespaces: []string{"team-*"}}, nil},
		{"cluster role binding", []string{crb}, &apiv1alpha1.Scope{}, []string{"ClusterRoleBinding", "own-the-cluster", "cluster-scoped", "spec.scope.clusterScoped"}},
		{"CRD and its cluster-scoped kind", []string{crd, widget}, &apiv1alpha1.Scope{}, []string{"CustomResourceDefinition", "Widget"}},
		{"CRD allowed", []string{crd, widget}, &apiv1alpha1.Scope{ClusterScoped: true}, nil},
		{"no scope", []string{crb, cmOther}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkScope(objs(t, tc.docs...), "team-a", tc.scope)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, manifest.ErrOutOfScope) {
				t.Fatalf("error %v, want ErrOutOfScope", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
