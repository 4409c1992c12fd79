package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// loginTTL bounds one sign-in: from /auth/login to the provider's
// redirect back.
const loginTTL = 10 * 60 // seconds

// randomString returns 32 random bytes, base64url without padding.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login starts the authorization code flow: a fresh state, nonce and PKCE
// verifier are kept in a short-lived HttpOnly cookie scoped to /auth/
// (SameSite=Lax, so that it comes back on the provider's top-level
// redirect) and the browser is sent to the provider.
func (s *SSO) login(w http.ResponseWriter, r *http.Request) {
	p, err := s.discover(r.Context())
	if err != nil {
		s.log.Warn("sign-in", "error", err)
		s.page(w, http.StatusServiceUnavailable, "The sign-in provider cannot be reached; try again later.")
		return
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{
		Name: loginCookieName, Value: state + "." + nonce + "." + verifier, Path: "/auth/", MaxAge: loginTTL,
		HttpOnly: true, Secure: s.SecureCookies(), SameSite: http.SameSiteLaxMode,
	})
	u := s.oauth2Config(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

// callback ends the flow: the state must match the login cookie's, the
// code is exchanged with the PKCE verifier, the ID token is verified with
// the provider's keys and must carry the login's nonce; the person's
// groups give the role. The session's secret goes only into the HttpOnly
// session cookie.
func (s *SSO) callback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookieName)
	http.SetCookie(w, &http.Cookie{Name: loginCookieName, Value: "", Path: "/auth/", MaxAge: -1, HttpOnly: true, Secure: s.SecureCookies(), SameSite: http.SameSiteLaxMode})
	if err != nil {
		s.page(w, http.StatusBadRequest, "This sign-in was not started here or took too long; start again.")
		return
	}
	parts := strings.Split(c.Value, ".")
	q := r.URL.Query()
	if len(parts) != 3 || subtle.ConstantTimeCompare([]byte(parts[0]), []byte(q.Get("state"))) != 1 {
		s.page(w, http.StatusBadRequest, "The sign-in's state does not match; start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.page(w, http.StatusUnauthorized, "The provider refused the sign-in: "+e+" "+q.Get("error_description"))
		return
	}
	nonce, verifier := parts[1], parts[2]
	p, err := s.discover(r.Context())
	if err != nil {
		s.log.Warn("sign-in", "error", err)
		s.page(w, http.StatusServiceUnavailable, "The sign-in provider cannot be reached; try again later.")
		return
	}
	tok, err := s.oauth2Config(p).Exchange(s.clientContext(r.Context()), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		s.log.Warn("sign-in: code exchange", "error", err)
		s.page(w, http.StatusUnauthorized, "The provider did not accept the sign-in's code; start again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.page(w, http.StatusUnauthorized, "The provider sent no ID token.")
		return
	}
	idt, cl, err := s.verify(r.Context(), p, s.opts.ClientID, raw)
	if err != nil {
		s.log.Warn("sign-in", "error", err)
		s.page(w, http.StatusUnauthorized, "The provider's ID token did not verify.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		s.page(w, http.StatusUnauthorized, "The ID token's nonce does not match this sign-in; start again.")
		return
	}
	secret, sess, err := s.startSession(r.Context(), cl, store.KindWebSession)
	if errors.Is(err, ErrNoRole) {
		s.log.Info("sign-in refused: no role", "person", personName(cl), "subject", cl.Subject, "groups", cl.Groups)
		s.page(w, http.StatusForbidden, fmt.Sprintf("Signed in as %s, but none of your groups (%s) has a role on this hub. Ask an admin.", personName(cl), strings.Join(cl.Groups, ", ")))
		return
	}
	if err != nil {
		s.log.Error("sign-in", "error", err)
		s.page(w, http.StatusInternalServerError, "The session could not be stored.")
		return
	}
	setSession(w, secret, randomString(), sess.ExpiresAt, s.SecureCookies())
	if s.opts.RolesMaxAge > 0 {
		s.setRefresh(w, secret, refreshState{Token: tok.RefreshToken, Checked: sess.CreatedAt.Unix()}, sess.ExpiresAt)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the browser's session (deleted from the store, cookies
// cleared). It changes state, so the CSRF check applies.
func (s *SSO) logout(w http.ResponseWriter, r *http.Request) {
	if err := CheckCSRF(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if raw := SessionCookie(r); raw != "" {
		if tok, err := s.sessions.LookupAPIToken(r.Context(), raw); err == nil && tok.Kind == store.KindWebSession {
			if err := s.sessions.DeleteAPIToken(r.Context(), tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("sign-out", "session", tok.ID, "error", err)
			}
			s.log.Info("signed out", "person", tok.Name, "session", tok.ID)
		}
	}
	ClearSession(w, s.SecureCookies())
	w.WriteHeader(http.StatusNoContent)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flotilla sign-in</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><main><h1>Sign-in</h1><p id="auth-message">{{.}}</p><p><a href="/">Back to Flotilla</a></p></main></body></html>
`))

// page answers with a small HTML page saying msg.
func (s *SSO) page(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = pageTmpl.Execute(w, msg)
}
