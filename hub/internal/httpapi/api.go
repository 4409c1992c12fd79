package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/status"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// Deps are the parts of the hub the API reads and drives.
type Deps struct {
	Store      store.Store
	Fleet      *fleet.Fleet
	Controller *controller.Controller
	Git        *gitsource.Manager
	// JoinInfo returns the hub address agents dial and the CA pin.
	JoinInfo func() (addr, caHash string)
	// TokenTTL is the lifetime of join tokens.
	TokenTTL time.Duration
	// TokenUsed, when set, is called with every API token that
	// authenticated a request (the server removes the first admin token's
	// file at its first use).
	TokenUsed func(raw string)
	// WebhookSecret verifies webhooks. Empty refuses every webhook unless
	// AllowUnsignedWebhooks is set.
	WebhookSecret []byte
	// AllowUnsignedWebhooks accepts webhooks without a signature when no
	// WebhookSecret is set (anyone who reaches the hub can then make it
	// poll a repository; refreshes are rate-limited per repository).
	AllowUnsignedWebhooks bool
	// Metrics serves /metrics to callers with a valid API token (any role).
	Metrics http.Handler
	// Ready reports readiness for /readyz.
	Ready func() error
	// Status answers for apps' status and carries out operations on them
	// (sync, diff, rollback); its Deliver must be wired to
	// agentapi.Hooks.CommandResult. Nil: New makes one over Store, Fleet
	// and Controller, and diff then times out.
	Status *status.Service
	// UI serves the web UI at / (nil: no UI).
	UI  http.Handler
	Log hclog.Logger
}

// API serves the hub's HTTP endpoints.
type API struct {
	d   Deps
	mux *http.ServeMux
	now func() time.Time
}

// New returns the API handler.
func New(d Deps) *API {
	if d.Log == nil {
		d.Log = hclog.NewNullLogger()
	}
	if d.Status == nil {
		d.Status = status.New(status.Deps{Store: d.Store, Fleet: d.Fleet, Controller: d.Controller, Log: d.Log})
	}
	a := &API{d: d, mux: http.NewServeMux(), now: time.Now}
	a.routes()
	return a
}

// ServeHTTP implements http.Handler. Every answer carries headers that keep
// the UI out of frames and browsers from guessing content types.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	a.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows the UI's own script and style only, no
// framing by any page, no plugins, and no form posts elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.HandleFunc("GET /readyz", a.readyz)
	if a.d.Metrics != nil {
		m.Handle("GET /metrics", a.auth(store.RoleReadOnly)(a.d.Metrics.ServeHTTP))
	}
	m.HandleFunc("POST /api/webhook", a.webhook)
	if a.d.UI != nil {
		m.Handle("GET /{$}", a.d.UI)
		m.Handle("GET /ui/", a.d.UI)
	}
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s (this hub serves /api/v1)", r.Method, r.URL.Path))
	})

	read, admin := a.auth(store.RoleReadOnly), a.auth(store.RoleAdmin)
	m.Handle("GET /api/v1/clusters", read(a.listClusters))
	m.Handle("GET /api/v1/clusters/{name}", read(a.getCluster))
	m.Handle("POST /api/v1/clusters", admin(a.addCluster))
	m.Handle("DELETE /api/v1/clusters/{name}", admin(a.removeCluster))
	m.Handle("POST /api/v1/clusters/{name}/token", admin(a.newToken))
	m.Handle("PATCH /api/v1/clusters/{name}/labels", admin(a.labelCluster))
	m.Handle("GET /api/v1/apps", read(a.listApps))
	m.Handle("GET /api/v1/clusters/{name}/history", read(a.clusterHistory))
	m.Handle("GET /api/v1/apps/{name}", read(a.getApp))
	m.Handle("GET /api/v1/apps/{name}/history", read(a.appHistory))
	m.Handle("GET /api/v1/apps/{name}/diff", read(a.diffApp))
	m.Handle("POST /api/v1/apps/{name}/sync", admin(a.syncApp))
	m.Handle("POST /api/v1/apps/{name}/refresh", admin(a.refreshApp))
	m.Handle("POST /api/v1/apps/{name}/rollback", admin(a.rollback))
	m.Handle("POST /api/v1/apps/{name}/unpin", admin(a.unpin))
	m.Handle("POST /api/v1/refresh", admin(a.refresh))
	m.Handle("GET /api/v1/audit", read(a.listAudit))
	m.Handle("GET /api/v1/tokens", admin(a.listTokens))
	m.Handle("POST /api/v1/tokens", admin(a.createToken))
	m.Handle("DELETE /api/v1/tokens/{id}", admin(a.deleteToken))
	m.Handle("GET /api/v1/whoami", read(a.whoami))
	m.Handle("GET /api/v1/events", read(a.events))
	m.Handle("GET /api/v1/definitions", read(a.definitions))
	m.Handle("GET /api/v1/backup", admin(a.backup))
}

func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	if a.d.Ready != nil {
		if err := a.d.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

type ctxKey struct{}

// Caller is who made a request.
type Caller struct {
	Name string
	Role string
}

func callerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(ctxKey{}).(Caller)
	return c
}

// auth wraps h so that it needs a bearer token of at least role.
func (a *API) auth(role string) func(http.HandlerFunc) http.Handler {
	return func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || raw == "" {
				writeError(w, http.StatusUnauthorized, "missing bearer token: run `flotilla login` or pass --token")
				return
			}
			tok, err := a.d.Store.LookupAPIToken(r.Context(), strings.TrimSpace(raw))
			if err != nil {
				writeError(w, http.StatusUnauthorized, "invalid token: this hub does not know it (deleted, mistyped or from another hub); run `flotilla login` with a current token")
				return
			}
			if role == store.RoleAdmin && tok.Role != store.RoleAdmin {
				writeError(w, http.StatusForbidden, fmt.Sprintf("token %q is read-only; this call changes state", tok.Name))
				return
			}
			if a.d.TokenUsed != nil {
				a.d.TokenUsed(strings.TrimSpace(raw))
			}
			ctx := context.WithValue(r.Context(), ctxKey{}, Caller{Name: tok.Name, Role: tok.Role})
			h(w, r.WithContext(ctx))
		})
	}
}

func (a *API) audit(r *http.Request, action, target, detail string) {
	err := a.d.Store.AppendAudit(r.Context(), store.AuditEntry{
		Time: a.now(), Actor: callerOf(r.Context()).Name, Action: action, Target: target, Detail: detail,
	})
	if err != nil {
		a.d.Log.Error("audit", "action", action, "target", target, "error", err)
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func storeError(w http.ResponseWriter, err error, what string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, what+" not found")
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, what+" already exists")
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrBadCursor):
		writeError(w, http.StatusBadRequest, "invalid page cursor")
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// statusError answers a status.Service error: the *status.Error's kind
// decides the code, anything else is the hub's own failure.
func statusError(w http.ResponseWriter, err error) {
	var se *status.Error
	if !errors.As(err, &se) {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	code := map[status.Kind]int{
		status.Invalid: http.StatusBadRequest, status.NotFound: http.StatusNotFound,
		status.Conflict: http.StatusConflict, status.Unprocessable: http.StatusUnprocessableEntity,
	}[se.Kind]
	writeError(w, code, se.Msg)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// pageOf reads ?after= and ?limit= (1..1000, default 100).
func pageOf(r *http.Request) (store.Page, error) {
	p := store.Page{After: r.URL.Query().Get("after")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return p, fmt.Errorf("limit %q: want a positive integer", l)
		}
		p.Limit = min(n, store.MaxPageLimit)
	}
	return p, nil
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	writeJSON(w, http.StatusOK, api.WhoamiResponse{Name: c.Name, Role: c.Role})
}
