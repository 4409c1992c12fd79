package manifest

import (
	"errors"
	"testing"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestCheckScope(t *testing.T) {
	none := &apiv1alpha1.Scope{}
	wide := &apiv1alpha1.Scope{Namespaces: []string{"monitoring", "team-a-*"}}
	cluster := &apiv1alpha1.Scope{ClusterScoped: true}
	any := &apiv1alpha1.Scope{Namespaces: []string{"*"}}
	cm := func(ns string) Key { return Key{Kind: "ConfigMap", Namespace: ns, Name: "c"} }
	crb := Key{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding", Name: "admin"}
	ns := func(name string) Key { return Key{Kind: "Namespace", Name: name} }
	for _, tc := range []struct {
		name       string
		k          Key
		namespaced bool
		s          *apiv1alpha1.Scope
		refused    bool
	}{
		{"no scope allows everything", crb, false, nil, false},
		{"destination namespace", cm("team-a"), true, none, false},
		{"other namespace refused", cm("team-b"), true, none, true},
		{"kube-system refused", cm("kube-system"), true, none, true},
		{"listed namespace", cm("monitoring"), true, wide, false},
		{"glob namespace", cm("team-a-dev"), true, wide, false},
		{"glob does not match", cm("team-b-dev"), true, wide, true},
		{"star matches any", cm("kube-system"), true, any, false},
		{"cluster-scoped refused", crb, false, none, true},
		{"cluster-scoped refused with namespaces", crb, false, any, true},
		{"cluster-scoped allowed", crb, false, cluster, false},
		{"own namespace object", ns("team-a"), false, none, false},
		{"listed namespace object", ns("team-a-dev"), false, wide, false},
		{"other namespace object refused", ns("kube-system"), false, none, true},
		{"cluster-scoped allows any namespace object", ns("x"), false, cluster, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckScope(tc.k, tc.namespaced, "team-a", tc.s)
			if got := err != nil; got != tc.refused {
				t.Fatalf("CheckScope(%s) = %v, want refused=%v", tc.k, err, tc.refused)
			}
			if err != nil && !errors.Is(err, ErrOutOfScope) {
				t.Errorf("error %v does not wrap ErrOutOfScope", err)
			}
		})
	}
}

func TestValidNamespacePattern(t *testing.T) {
	for p, ok := range map[string]bool{"team-a": true, "team-*": true, "*": true, "[": false, "": false} {
		if err := ValidNamespacePattern(p); (err == nil) != ok {
			t.Errorf("ValidNamespacePattern(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}
