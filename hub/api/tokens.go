package api

import "time"

// TokenView is an API token or a single sign-on session without its secret
// (GET /api/v1/tokens).
type TokenView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// Projects are the projects a RoleDeployer token may deploy.
	Projects []string `json:"projects,omitempty"`
	// ExpiresAt is zero for a token that never expires (made before
	// tokens expired, or the first admin token).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Kind is empty for an API token, KindWebSession or KindCLISession for
	// a person's single sign-on session.
	Kind string `json:"kind,omitempty"`
}

// Token kinds (TokenView.Kind).
const (
	KindWebSession = "web-session"
	KindCLISession = "cli-session"
)

// CreateTokenRequest makes an API token (POST /api/v1/tokens). Role is
// RoleReadOnly (the default), RoleDeployer (with Projects) or RoleAdmin.
// TTL is a Go duration ("720h"); empty takes the hub's default lifetime.
type CreateTokenRequest struct {
	Name     string   `json:"name"`
	Role     string   `json:"role,omitempty"`
	Projects []string `json:"projects,omitempty"`
	TTL      string   `json:"ttl,omitempty"`
}

// CreateTokenResponse carries the raw token; it is shown only here.
type CreateTokenResponse struct {
	TokenView
	Token string `json:"token"`
}

// SSOInfo tells a client how to sign in through the hub's OpenID Connect
// provider (GET /auth/info, no authentication). Enabled is false when the
// hub has no single sign-on; the other fields are then empty.
type SSOInfo struct {
	Enabled bool   `json:"enabled"`
	Issuer  string `json:"issuer,omitempty"`
	// CLIClientID is the public client the CLI signs in as.
	CLIClientID string `json:"cliClientID,omitempty"`
	// DeviceAuthorizationEndpoint and TokenEndpoint are the provider's
	// (from its discovery document).
	DeviceAuthorizationEndpoint string `json:"deviceAuthorizationEndpoint,omitempty"`
	// AuthorizationEndpoint is the provider's, for the CLI's browser
	// sign-in (authorization code with PKCE to a loopback redirect).
	AuthorizationEndpoint string   `json:"authorizationEndpoint,omitempty"`
	TokenEndpoint         string   `json:"tokenEndpoint,omitempty"`
	Scopes                []string `json:"scopes,omitempty"`
}

// CLILoginRequest trades an ID token the provider issued to the CLI's
// client for a hub session (POST /auth/cli).
type CLILoginRequest struct {
	IDToken string `json:"idToken"`
}

// CLILoginResponse is the session: Token is a bearer token for the API,
// shown only here.
type CLILoginResponse struct {
	WhoamiResponse
	Token string `json:"token"`
}
