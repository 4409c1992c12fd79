package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// info tells clients how to sign in (no authentication: it holds nothing
// secret).
func (s *SSO) info(w http.ResponseWriter, r *http.Request) {
	p, err := s.discover(r.Context())
	if err != nil {
		s.log.Warn("sign-in info", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: "the sign-in provider cannot be reached: " + err.Error()})
		return
	}
	ep := p.Endpoint()
	out := api.SSOInfo{Enabled: true, Issuer: s.opts.Issuer, Scopes: s.opts.Scopes}
	if s.opts.CLIClientID != "" {
		out.CLIClientID, out.DeviceAuthorizationEndpoint, out.TokenEndpoint = s.opts.CLIClientID, ep.DeviceAuthURL, ep.TokenURL
		out.AuthorizationEndpoint = ep.AuthURL
	}
	writeJSON(w, http.StatusOK, out)
}

// cliLogin trades an ID token the provider issued to the CLI's public
// client (after a device authorization grant, or the browser sign-in's
// authorization code with PKCE) for a hub session of the
// person's role, answered as a bearer token.
func (s *SSO) cliLogin(w http.ResponseWriter, r *http.Request) {
	if s.opts.CLIClientID == "" {
		writeJSON(w, http.StatusNotFound, api.Error{Error: "this hub has no CLI client for single sign-on (--oidc-cli-client-id)"})
		return
	}
	var req api.CLILoginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.IDToken == "" {
		writeJSON(w, http.StatusBadRequest, api.Error{Error: "request body: want {\"idToken\": ...}"})
		return
	}
	p, err := s.discover(r.Context())
	if err != nil {
		s.log.Warn("cli sign-in", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: "the sign-in provider cannot be reached"})
		return
	}
	_, cl, err := s.verify(r.Context(), p, s.opts.CLIClientID, req.IDToken)
	if err != nil {
		s.log.Info("cli sign-in refused", "error", err)
		writeJSON(w, http.StatusUnauthorized, api.Error{Error: "the ID token did not verify: " + err.Error()})
		return
	}
	secret, sess, err := s.startSession(r.Context(), cl, store.KindCLISession)
	if errors.Is(err, ErrNoRole) {
		writeJSON(w, http.StatusForbidden, api.Error{Error: fmt.Sprintf("signed in as %s, but none of your groups has a role on this hub", personName(cl))})
		return
	}
	if err != nil {
		s.log.Error("cli sign-in", "error", err)
		writeJSON(w, http.StatusInternalServerError, api.Error{Error: "the session could not be stored"})
		return
	}
	writeJSON(w, http.StatusOK, api.CLILoginResponse{
		WhoamiResponse: api.WhoamiResponse{Name: sess.Name, Role: sess.Role, Projects: sess.Projects, Person: true, Subject: sess.Subject, ExpiresAt: sess.ExpiresAt},
		Token:          secret,
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
