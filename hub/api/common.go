package api

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
)

// WhoamiResponse names the caller's token (GET /api/v1/whoami).
type WhoamiResponse struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// WebhookResponse is the answer to an accepted webhook (POST /api/webhook):
// which git host's format it was read as and whether it named a repository
// the hub tracks.
type WebhookResponse struct {
	Matched  bool   `json:"matched"`
	Provider string `json:"provider"`
}
