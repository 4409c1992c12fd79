// Package auth decides who calls the hub's HTTP API and what they may do.
//
// It owns the roles (admin; deployer of some projects; read-only), the
// mapping of an OpenID Connect provider's groups to those roles, single
// sign-on for the web UI (authorization code with PKCE, state and nonce,
// ID tokens verified with the provider's keys) and for the CLI (an ID token
// the provider issued to the CLI's public client, traded for a hub
// session), the session cookie and the CSRF rules for requests a browser
// makes with it. Sessions are API tokens of a session kind in the store, so
// that every replica of the hub knows them and they can be listed and
// revoked like tokens.
package auth
