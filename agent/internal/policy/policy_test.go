package policy

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func TestCheck(t *testing.T) {
	p, err := FromData("ConfigMap flotilla-system/policy", map[string]string{
		KeyNamespaces:    "team-*, web\n",
		KeyDenyKinds:     "rbac.authorization.k8s.io/ClusterRoleBinding,*/Secret",
		KeyAllowKinds:    "apps/*\nConfigMap\nSecret\nrbac.authorization.k8s.io/*\nNamespace",
		KeyClusterScoped: "false",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key        manifest.Key
		namespaced bool
		want       string
	}{
		{manifest.Key{Group: "apps", Kind: "Deployment", Namespace: "team-a", Name: "web"}, true, ""},
		{manifest.Key{Kind: "ConfigMap", Namespace: "web", Name: "c"}, true, ""},
		{manifest.Key{Kind: "ConfigMap", Namespace: "kube-system", Name: "c"}, true, "/ConfigMap kube-system/c: refused by the cluster's policy: namespace kube-system is not in ConfigMap flotilla-system/policy namespaces (team-*, web)"},
		{manifest.Key{Kind: "Secret", Namespace: "web", Name: "s"}, true, "/Secret web/s: refused by the cluster's policy: kind Secret is denied by ConfigMap flotilla-system/policy denyKinds (*/Secret)"},
		{manifest.Key{Kind: "Service", Namespace: "web", Name: "s"}, true, "/Service web/s: refused by the cluster's policy: kind Service is not in ConfigMap flotilla-system/policy allowKinds"},
		{manifest.Key{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding", Name: "admin"}, false, "rbac.authorization.k8s.io/ClusterRoleBinding /admin: refused by the cluster's policy: kind rbac.authorization.k8s.io/ClusterRoleBinding is denied by ConfigMap flotilla-system/policy denyKinds (rbac.authorization.k8s.io/ClusterRoleBinding)"},
		{manifest.Key{Kind: "Namespace", Name: "team-a"}, false, "/Namespace /team-a: refused by the cluster's policy: it is cluster-scoped and ConfigMap flotilla-system/policy sets clusterScoped=false"},
	}
	for _, tt := range tests {
		err := p.Check(tt.key, tt.namespaced)
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%s: %v does not wrap ErrRefused", tt.key, err)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.key, diff)
		}
	}
}

func TestFromDataRefusesMalformed(t *testing.T) {
	for _, data := range []map[string]string{
		{KeyClusterScoped: "maybe"},
		{"denykinds": "Secret"},
		{KeyNamespaces: "team-["},
	} {
		if _, err := FromData("cm", data); err == nil {
			t.Errorf("%v: accepted", data)
		}
	}
}

// TestSet: every policy of a Set applies; Update replaces a source's
// policy and moves Gen; a nil Set allows everything.
func TestSet(t *testing.T) {
	s := NewSet()
	k := manifest.Key{Kind: "Secret", Namespace: "a", Name: "s"}
	if err := s.Check(k, true); err != nil {
		t.Fatal(err)
	}
	changed := 0
	s.OnChange(func() { changed++ })
	s.Update(Policy{Source: "flags", DenyKinds: []string{"Secret"}})
	s.Update(Policy{Source: "cm", Namespaces: []string{"b"}})
	if err := s.Check(k, true); err == nil {
		t.Error("Secret allowed although the flags deny it")
	}
	s.Update(Policy{Source: "flags"})
	if err := s.Check(k, true); err == nil {
		t.Error("namespace a allowed although the ConfigMap allows only b")
	}
	s.Update(Policy{Source: "cm", Broken: "cm does not exist"})
	if err := s.Check(manifest.Key{Kind: "ConfigMap", Namespace: "b", Name: "c"}, true); err == nil {
		t.Error("a broken policy allowed an object")
	}
	if s.Gen() != 4 || changed != 4 {
		t.Errorf("gen %d, %d changes; want 4", s.Gen(), changed)
	}
	var none *Set
	if err := none.Check(k, true); err != nil || none.Gen() != 0 {
		t.Errorf("nil set: %v", err)
	}
}

// TestSelf: the agent's own objects are refused by kind, name and
// namespace; the same kinds elsewhere, or of other names, are not.
func TestSelf(t *testing.T) {
	s := Self{Namespace: "flotilla-system", Name: "flotilla-agent", PolicyConfigMap: "flotilla-agent-policy", IdentitySecret: "flotilla-agent-identity"}
	rbac := "rbac.authorization.k8s.io"
	tests := []struct {
		key        manifest.Key
		namespaced bool
		refused    bool
	}{
		{manifest.Key{Kind: "ConfigMap", Namespace: "flotilla-system", Name: "flotilla-agent-policy"}, true, true},
		{manifest.Key{Kind: "ConfigMap", Namespace: "flotilla-system", Name: "settings"}, true, false},
		{manifest.Key{Kind: "ConfigMap", Namespace: "team-a", Name: "flotilla-agent-policy"}, true, false},
		{manifest.Key{Group: rbac, Kind: "Role", Namespace: "flotilla-system", Name: "any"}, true, true},
		{manifest.Key{Group: rbac, Kind: "RoleBinding", Namespace: "flotilla-system", Name: "any"}, true, true},
		{manifest.Key{Group: rbac, Kind: "RoleBinding", Namespace: "team-a", Name: "any"}, true, false},
		{manifest.Key{Kind: "ServiceAccount", Namespace: "flotilla-system", Name: "flotilla-agent"}, true, true},
		{manifest.Key{Kind: "ServiceAccount", Namespace: "flotilla-system", Name: "flotilla-hub"}, true, false},
		{manifest.Key{Group: "apps", Kind: "Deployment", Namespace: "flotilla-system", Name: "flotilla-agent"}, true, true},
		{manifest.Key{Group: "apps", Kind: "Deployment", Namespace: "flotilla-system", Name: "flotilla-hub"}, true, false},
		{manifest.Key{Kind: "Secret", Namespace: "flotilla-system", Name: "flotilla-agent-identity"}, true, true},
		{manifest.Key{Group: rbac, Kind: "ClusterRoleBinding", Name: "flotilla-agent"}, false, true},
		{manifest.Key{Group: rbac, Kind: "ClusterRoleBinding", Name: "other"}, false, false},
	}
	for _, tt := range tests {
		err := s.Check(tt.key, tt.namespaced)
		if (err != nil) != tt.refused {
			t.Errorf("%s: %v, want refused %v", tt.key, err, tt.refused)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v does not wrap ErrRefused", tt.key, err)
		}
	}
	set := NewSet()
	set.Protect(s)
	if err := set.Check(manifest.Key{Kind: "ConfigMap", Namespace: "flotilla-system", Name: "flotilla-agent-policy"}, true); err == nil {
		t.Error("a Set that protects the agent allowed its policy ConfigMap")
	}
}
