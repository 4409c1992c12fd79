package auth

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGrant(t *testing.T) {
	m := RoleMap{
		AdminGroups:    []string{"platform"},
		DeployerGroups: map[string][]string{"team-a": {"shop"}, "team-b": {"payments", "shop"}},
		ReadOnlyGroups: []string{"staff"},
	}
	tests := []struct {
		name     string
		groups   []string
		role     string
		projects []string
		ok       bool
	}{
		{"admin wins", []string{"staff", "team-a", "platform"}, "admin", nil, true},
		{"deployer of every group's projects", []string{"team-b", "team-a", "staff"}, "deployer", []string{"payments", "shop"}, true},
		{"read-only", []string{"staff", "other"}, "readonly", nil, true},
		{"no mapped group", []string{"other"}, "", nil, false},
		{"no groups", nil, "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, projects, ok := m.Grant(tt.groups)
			if d := cmp.Diff([]any{tt.role, tt.projects, tt.ok}, []any{role, projects, ok}); d != "" {
				t.Errorf("Grant(%v) (-want +got):\n%s", tt.groups, d)
			}
		})
	}
}

func TestParseDeployerGroups(t *testing.T) {
	got, err := ParseDeployerGroups([]string{"team-a=shop", "team-a=web", "team-b=pay"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string][]string{"team-a": {"shop", "web"}, "team-b": {"pay"}}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"team-a", "=shop", "team-a="} {
		if _, err := ParseDeployerGroups([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
