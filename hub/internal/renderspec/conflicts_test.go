package renderspec

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetNamespace(ns)
	o.SetName(name)
	return o
}

func hookJob(generateName string) *unstructured.Unstructured {
	o := obj("batch/v1", "Job", "", "")
	o.SetGenerateName(generateName)
	o.SetAnnotations(map[string]string{"argocd.argoproj.io/hook": "PreSync"})
	return o
}

func TestCheckConflicts(t *testing.T) {
	tests := []struct {
		name string
		apps map[string]AppObjects
		want string
	}{
		{"no conflict across namespaces", map[string]AppObjects{
			"a": {Namespace: "team-a", Objects: []*unstructured.Unstructured{obj("apps/v1", "Deployment", "", "web")}},
			"b": {Namespace: "team-b", Objects: []*unstructured.Unstructured{obj("apps/v1", "Deployment", "", "web")}},
		}, ""},
		{"same object through the destination namespace", map[string]AppObjects{
			"a": {Namespace: "shop", Objects: []*unstructured.Unstructured{obj("apps/v1", "Deployment", "", "web")}},
			"b": {Namespace: "other", Objects: []*unstructured.Unstructured{obj("apps/v1beta1", "Deployment", "shop", "web")}},
		}, "object claimed by two applications: apps/Deployment shop/web is in application a and in application b"},
		{"cluster-scoped ignores the namespace", map[string]AppObjects{
			"a": {Namespace: "x", Objects: []*unstructured.Unstructured{obj("v1", "Namespace", "", "shop"), obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "r")}},
			"b": {Namespace: "y", Objects: []*unstructured.Unstructured{obj("v1", "Namespace", "", "shop")}},
			"c": {Namespace: "z", Objects: []*unstructured.Unstructured{obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "r")}},
		}, "object claimed by two applications: /Namespace /shop is in application a and in application b\n" +
			"object claimed by two applications: rbac.authorization.k8s.io/ClusterRole /r is in application a and in application c"},
		{"generateName hooks claim nothing", map[string]AppObjects{
			"a": {Namespace: "n", Objects: []*unstructured.Unstructured{hookJob("migrate-")}},
			"b": {Namespace: "n", Objects: []*unstructured.Unstructured{hookJob("migrate-")}},
		}, ""},
		{"same kind name in another group", map[string]AppObjects{
			"a": {Namespace: "n", Objects: []*unstructured.Unstructured{obj("example.com/v1", "Deployment", "", "web")}},
			"b": {Namespace: "n", Objects: []*unstructured.Unstructured{obj("apps/v1", "Deployment", "", "web")}},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckConflicts(tt.apps)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, ErrConflict) {
					t.Errorf("%v does not wrap ErrConflict", err)
				}
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
