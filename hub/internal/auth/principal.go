package auth

import (
	"slices"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// Principal is who made a request: a token, or a person signed in through
// single sign-on, with the role the token or the person's groups give.
type Principal struct {
	// Name is the token's name, or the person's email (their OpenID
	// Connect subject when the provider gave no email). The audit log and
	// sync history name callers by it.
	Name string
	// Role is store.RoleAdmin, store.RoleDeployer or store.RoleReadOnly.
	Role string
	// Projects are the projects a deployer may deploy.
	Projects []string
	// Person is true for a single sign-on session; Subject is then the
	// provider's subject.
	Person  bool
	Subject string
	// TokenID is the ID of the token or session.
	TokenID   string
	ExpiresAt time.Time
	// Cookie is true when the request was authenticated by the session
	// cookie (a browser), false for a bearer token.
	Cookie bool
}

// FromToken returns the principal a stored token or session stands for.
func FromToken(t store.APIToken) Principal {
	p := Principal{Name: t.Name, Role: t.Role, Projects: t.Projects, TokenID: t.ID, ExpiresAt: t.ExpiresAt}
	if t.Kind != store.KindToken {
		p.Person, p.Subject = true, t.Subject
	}
	return p
}

// CanAdmin reports whether p may change the fleet as a whole: clusters,
// tokens, backups, the global refresh.
func (p Principal) CanAdmin() bool { return p.Role == store.RoleAdmin }

// CanDeploy reports whether p may sync, refresh, roll back and pin the
// apps of project.
func (p Principal) CanDeploy(project string) bool {
	return p.CanAdmin() || p.Role == store.RoleDeployer && slices.Contains(p.Projects, project)
}

// CanRead reports whether p may read the fleet's state (every role may).
func (p Principal) CanRead() bool {
	return p.Role == store.RoleAdmin || p.Role == store.RoleDeployer || p.Role == store.RoleReadOnly
}
