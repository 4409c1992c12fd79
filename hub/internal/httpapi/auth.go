package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/auth"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

type ctxKey struct{}

// Caller is who made a request.
type Caller = auth.Principal

func callerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(ctxKey{}).(Caller)
	return c
}

// permission is what a route needs of its caller.
type permission int

const (
	// permRead: any role.
	permRead permission = iota
	// permDeploy: deploy the project of the app named by the path's
	// {name} (admin, or a deployer of that project).
	permDeploy
	// permAdmin: change the fleet as a whole.
	permAdmin
)

// auth wraps h so that it runs only for a caller with perm: a bearer
// token, or a browser's single sign-on session cookie (then a request that
// changes state must also pass the CSRF check).
func (a *API) auth(perm permission) func(http.HandlerFunc) http.Handler {
	return func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := a.authenticate(w, r)
			if !ok {
				return
			}
			switch perm {
			case permAdmin:
				if !p.CanAdmin() {
					writeError(w, http.StatusForbidden, fmt.Sprintf("%s is %s; this call needs the admin role", p.Name, roleText(p)))
					return
				}
			case permDeploy:
				name := r.PathValue("name")
				project, found := a.appProject(name)
				if !found {
					writeError(w, http.StatusNotFound, fmt.Sprintf("application %q not found", name))
					return
				}
				if !p.CanDeploy(project) {
					writeError(w, http.StatusForbidden, fmt.Sprintf("%s is %s; application %q is in project %q", p.Name, roleText(p), name, project))
					return
				}
			default:
				if !p.CanRead() {
					writeError(w, http.StatusForbidden, fmt.Sprintf("%s has no role", p.Name))
					return
				}
			}
			h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
		})
	}
}

// authenticate finds the caller of r, or answers 401 (or 403 for a
// cross-site browser request) and returns ok=false. A bearer token wins
// over a session cookie.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	raw, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	cookie := false
	if !bearer || raw == "" {
		raw = auth.SessionCookie(r)
		cookie = raw != ""
	}
	if raw == "" {
		writeError(w, http.StatusUnauthorized, "missing bearer token: run `flotilla login` or pass --token")
		return auth.Principal{}, false
	}
	if cookie {
		if err := auth.CheckCSRF(r); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return auth.Principal{}, false
		}
	}
	tok, err := a.d.Store.LookupAPIToken(r.Context(), raw)
	if err != nil && !errors.Is(err, store.ErrTokenInvalid) {
		// The store did not answer (a replica cut off from its API
		// server): the token may well be good; say so, and keep the
		// session cookie.
		a.d.Log.Warn("check a token: the store did not answer", "error", err)
		writeError(w, http.StatusServiceUnavailable, "this hub cannot check tokens now: its store does not answer; try again or use another replica")
		return auth.Principal{}, false
	}
	if err != nil {
		if cookie {
			auth.ClearSession(w, a.secureCookies())
			writeError(w, http.StatusUnauthorized, "session ended: sign in again")
		} else {
			writeError(w, http.StatusUnauthorized, "invalid token: this hub does not know it (deleted, mistyped or from another hub); run `flotilla login` with a current token")
		}
		return auth.Principal{}, false
	}
	if tok.Expired(a.now()) {
		if tok.Kind != store.KindToken {
			// A session is of no use once expired; tokens stay listed
			// until an admin deletes them.
			if err := a.d.Store.DeleteAPIToken(r.Context(), tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				a.d.Log.Warn("delete expired session", "id", tok.ID, "error", err)
			}
		}
		if cookie {
			auth.ClearSession(w, a.secureCookies())
		}
		writeError(w, http.StatusUnauthorized, fmt.Sprintf("%s %q expired at %s: sign in again or make a new token", kindText(tok.Kind), tok.Name, tok.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")))
		return auth.Principal{}, false
	}
	if a.d.SSO != nil {
		if err := a.d.SSO.Recheck(w, r, raw, tok); err != nil {
			if err := a.d.Store.DeleteAPIToken(r.Context(), tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				a.d.Log.Warn("delete session", "id", tok.ID, "error", err)
			}
			if cookie {
				auth.ClearSession(w, a.secureCookies())
			}
			writeError(w, http.StatusUnauthorized, "session ended: "+err.Error())
			return auth.Principal{}, false
		}
	}
	if !cookie && a.d.TokenUsed != nil {
		a.d.TokenUsed(raw)
	}
	p := auth.FromToken(tok)
	p.Cookie = cookie
	return p, true
}

func (a *API) secureCookies() bool { return a.d.SSO != nil && a.d.SSO.SecureCookies() }

// appProject returns the project of the app called name (the default
// project when the app names none); found is false when there is no such
// app.
func (a *API) appProject(name string) (project string, found bool) {
	for _, as := range a.d.Controller.Snapshot().Apps {
		if as.Name == name {
			return as.Spec.ProjectName(), true
		}
	}
	return "", false
}

func roleText(p auth.Principal) string {
	switch p.Role {
	case store.RoleDeployer:
		return "deployer of project(s) " + strings.Join(p.Projects, ", ")
	case store.RoleReadOnly:
		return "read-only"
	}
	return p.Role
}

func kindText(kind string) string {
	if kind == store.KindToken {
		return "token"
	}
	return "session of"
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	writeJSON(w, http.StatusOK, api.WhoamiResponse{
		Name: c.Name, Role: c.Role, Projects: c.Projects, Person: c.Person, Subject: c.Subject, ExpiresAt: c.ExpiresAt,
	})
}
