package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// RoleMap maps an OpenID Connect provider's groups to roles.
type RoleMap struct {
	// AdminGroups make their members admins.
	AdminGroups []string
	// DeployerGroups map a group to the projects its members may deploy.
	DeployerGroups map[string][]string
	// ReadOnlyGroups give their members read-only access.
	ReadOnlyGroups []string
}

// Grant returns the role of a person in groups and, for a deployer, the
// projects (sorted, without repeats): admin when any group is an admin
// group, else deployer of every project a group names, else read-only when
// any group is a read-only group. ok is false when no group maps to a role.
func (m RoleMap) Grant(groups []string) (role string, projects []string, ok bool) {
	for _, g := range groups {
		if slices.Contains(m.AdminGroups, g) {
			return store.RoleAdmin, nil, true
		}
	}
	for _, g := range groups {
		projects = append(projects, m.DeployerGroups[g]...)
	}
	if len(projects) > 0 {
		slices.Sort(projects)
		return store.RoleDeployer, slices.Compact(projects), true
	}
	for _, g := range groups {
		if slices.Contains(m.ReadOnlyGroups, g) {
			return store.RoleReadOnly, nil, true
		}
	}
	return "", nil, false
}

// ParseDeployerGroups reads GROUP=PROJECT pairs (a group may appear
// several times, once per project).
func ParseDeployerGroups(pairs []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, p := range pairs {
		g, proj, ok := strings.Cut(p, "=")
		if !ok || g == "" || proj == "" {
			return nil, fmt.Errorf("deployer group %q: want GROUP=PROJECT", p)
		}
		out[g] = append(out[g], proj)
	}
	return out, nil
}
