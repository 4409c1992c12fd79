package api

import "time"

// ListResponse is every paginated list (?after=<cursor>&limit=<1..1000>).
type ListResponse[T any] struct {
	Items []T `json:"items"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// Error is the body of every error answer (4xx, 5xx).
type Error struct {
	Error string `json:"error"`
}

// Token roles.
const (
	// RoleAdmin may change state.
	RoleAdmin = "admin"
	// RoleReadOnly may only read.
	RoleReadOnly = "readonly"
	// RoleDeployer may read, and sync, roll back and pin the apps of its
	// projects.
	RoleDeployer = "deployer"
)

// WhoamiResponse names the caller (GET /api/v1/whoami): a token's name or
// a person's email (or OpenID Connect subject), the role and, for
// RoleDeployer, the projects whose apps the caller may sync, roll back
// and pin.
type WhoamiResponse struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Projects []string `json:"projects,omitempty"`
	// Person is true for a person signed in through single sign-on.
	Person    bool      `json:"person,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// WebhookResponse is the answer to an accepted webhook (POST /api/webhook):
// which git host's format it was read as and whether it named a repository
// the hub tracks.
type WebhookResponse struct {
	Matched  bool   `json:"matched"`
	Provider string `json:"provider"`
}
