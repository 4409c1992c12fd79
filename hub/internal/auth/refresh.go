package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// A person's roles come from their groups at sign-in. With
// Options.RolesMaxAge the hub reads the groups again once the roles are
// older than that:
//   - a web session keeps the provider's refresh token in an HttpOnly
//     cookie, sealed (AES-GCM) with a key derived from the session's own
//     secret, so the hub stores no refresh token and only the browser
//     that holds the session can use it; a request past the age refreshes
//     at the provider, verifies the new ID token and maps its groups;
//   - a CLI session (the hub holds no refresh token for it) must sign in
//     again.
// The same role and projects carry on (the cookie records the new check);
// a different role, no role, a refused refresh or none to use end the
// session.

// refreshCookieName holds a web session's sealed refresh state.
const refreshCookieName = "flotilla_refresh"

// ErrRolesChanged wraps every end of a session because its roles could
// not be confirmed.
var ErrRolesChanged = errors.New("roles no longer confirmed")

type refreshState struct {
	Token   string `json:"t"`
	Checked int64  `json:"c"` // unix seconds of the last read of the groups
}

func refreshAEAD(sessionSecret string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte("flotilla refresh cookie\x00" + sessionSecret))
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func sealRefresh(sessionSecret string, st refreshState) (string, error) {
	a, err := refreshAEAD(sessionSecret)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plain, nil)), nil
}

func openRefresh(sessionSecret, sealed string) (refreshState, error) {
	var st refreshState
	a, err := refreshAEAD(sessionSecret)
	if err != nil {
		return st, err
	}
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < a.NonceSize() {
		return st, errors.New("malformed refresh cookie")
	}
	plain, err := a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], nil)
	if err != nil {
		return st, errors.New("refresh cookie does not belong to this session")
	}
	return st, json.Unmarshal(plain, &st)
}

func (s *SSO) setRefresh(w http.ResponseWriter, sessionSecret string, st refreshState, expires time.Time) {
	v, err := sealRefresh(sessionSecret, st)
	if err != nil {
		s.log.Error("seal refresh cookie", "error", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: refreshCookieName, Value: v, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.SecureCookies(), SameSite: http.SameSiteStrictMode,
	})
}

// Recheck confirms the roles of session tok (authenticated by its secret,
// from the request's cookie or bearer header) when they are older than
// Options.RolesMaxAge, as the package comment above says. A nil error
// means the session carries on; an error wrapping ErrRolesChanged says why
// it must end (the caller deletes it).
func (s *SSO) Recheck(w http.ResponseWriter, r *http.Request, secret string, tok store.APIToken) error {
	maxAge := s.opts.RolesMaxAge
	if maxAge <= 0 || (tok.Kind != store.KindWebSession && tok.Kind != store.KindCLISession) {
		return nil
	}
	now := s.now()
	// One re-read at a time, and none for a session this hub confirmed
	// within the age: the browser sends requests in parallel, and a
	// refresh token is spent by its first use.
	s.recheckMu.Lock()
	defer s.recheckMu.Unlock()
	if t, ok := s.rechecked[tok.ID]; ok && now.Sub(t) < maxAge {
		return nil
	}
	checked := tok.CreatedAt
	var st refreshState
	if c, err := r.Cookie(refreshCookieName); err == nil && tok.Kind == store.KindWebSession {
		if st, err = openRefresh(secret, c.Value); err == nil && time.Unix(st.Checked, 0).After(checked) {
			checked = time.Unix(st.Checked, 0)
		}
	}
	if now.Sub(checked) < maxAge {
		return nil
	}
	age := maxAge.String()
	if tok.Kind == store.KindCLISession {
		return fmt.Errorf("%w: the roles of %s were read more than %s ago; run `flotilla login --sso` again", ErrRolesChanged, tok.Name, age)
	}
	if st.Token == "" {
		return fmt.Errorf("%w: the roles of %s were read more than %s ago and the provider gave no refresh token; sign in again", ErrRolesChanged, tok.Name, age)
	}
	p, err := s.discover(r.Context())
	if err != nil {
		// The provider is down: keep the session rather than lock
		// everyone out; the check runs again on the next request.
		s.log.Warn("re-reading roles: provider unreachable; session kept for now", "person", tok.Name, "session", tok.ID, "error", err)
		return nil
	}
	ctx := s.clientContext(r.Context())
	fresh, err := s.oauth2Config(p).TokenSource(ctx, &oauth2.Token{RefreshToken: st.Token}).Token()
	if err != nil {
		return fmt.Errorf("%w: the provider refused to refresh the sign-in of %s (%v); sign in again", ErrRolesChanged, tok.Name, err)
	}
	raw, _ := fresh.Extra("id_token").(string)
	if raw == "" {
		return fmt.Errorf("%w: the provider's refresh for %s carried no ID token; sign in again", ErrRolesChanged, tok.Name)
	}
	_, cl, err := s.verify(r.Context(), p, s.opts.ClientID, raw)
	if err != nil || cl.Subject != tok.Subject {
		return fmt.Errorf("%w: the provider's refreshed ID token for %s did not verify (%v); sign in again", ErrRolesChanged, tok.Name, err)
	}
	role, projects, ok := s.roles.Grant(cl.Groups)
	if !ok || role != tok.Role || !slices.Equal(projects, tok.Projects) {
		now := "no role"
		if ok {
			now = role
			if len(projects) > 0 {
				now += " of " + strings.Join(projects, ", ")
			}
		}
		s.log.Info("roles changed; session ended", "person", tok.Name, "subject", tok.Subject, "session", tok.ID, "role", tok.Role, "now", now, "groups", cl.Groups)
		return fmt.Errorf("%w: the groups of %s changed (%s now); sign in again", ErrRolesChanged, tok.Name, now)
	}
	if fresh.RefreshToken != "" {
		st.Token = fresh.RefreshToken
	}
	st.Checked = now.Unix()
	s.setRefresh(w, secret, st, tok.ExpiresAt)
	for id, t := range s.rechecked {
		if now.Sub(t) >= maxAge {
			delete(s.rechecked, id)
		}
	}
	s.rechecked[tok.ID] = now
	s.log.Info("roles read again", "person", tok.Name, "session", tok.ID, "role", tok.Role, "projects", tok.Projects)
	return nil
}
