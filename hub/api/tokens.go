package api

import "time"

// TokenView is an API token without its secret (GET /api/v1/tokens).
type TokenView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

// CreateTokenRequest makes an API token (POST /api/v1/tokens). Role is
// RoleReadOnly (the default) or RoleAdmin.
type CreateTokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
}

// CreateTokenResponse carries the raw token; it is shown only here.
type CreateTokenResponse struct {
	TokenView
	Token string `json:"token"`
}
