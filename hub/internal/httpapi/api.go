package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
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
	// WebhookSecret verifies webhooks; empty accepts unsigned ones.
	WebhookSecret []byte
	// Metrics serves /metrics.
	Metrics http.Handler
	// Ready reports readiness for /readyz.
	Ready func() error
	Log   hclog.Logger
}

// API serves the hub's HTTP endpoints.
type API struct {
	d   Deps
	mux *http.ServeMux
	now func() time.Time
}

// New returns the API handler.
func New(d Deps) *API {
	a := &API{d: d, mux: http.NewServeMux(), now: time.Now}
	a.routes()
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.HandleFunc("GET /readyz", a.readyz)
	if a.d.Metrics != nil {
		m.Handle("GET /metrics", a.d.Metrics)
	}
	m.HandleFunc("POST /api/webhook", a.webhook)

	read, admin := a.auth(store.RoleReadOnly), a.auth(store.RoleAdmin)
	m.Handle("GET /api/v1/clusters", read(a.listClusters))
	m.Handle("GET /api/v1/clusters/{name}", read(a.getCluster))
	m.Handle("POST /api/v1/clusters", admin(a.addCluster))
	m.Handle("DELETE /api/v1/clusters/{name}", admin(a.removeCluster))
	m.Handle("POST /api/v1/clusters/{name}/token", admin(a.newToken))
	m.Handle("PATCH /api/v1/clusters/{name}/labels", admin(a.labelCluster))
	m.Handle("GET /api/v1/apps", read(a.listApps))
	m.Handle("GET /api/v1/apps/{name}", read(a.getApp))
	m.Handle("POST /api/v1/apps/{name}/sync", admin(a.syncApp))
	m.Handle("POST /api/v1/refresh", admin(a.refresh))
	m.Handle("GET /api/v1/audit", read(a.listAudit))
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
				writeError(w, http.StatusUnauthorized, "invalid token")
				return
			}
			if role == store.RoleAdmin && tok.Role != store.RoleAdmin {
				writeError(w, http.StatusForbidden, fmt.Sprintf("token %q is read-only; this call changes state", tok.Name))
				return
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

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
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

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// ListResponse is every paginated list.
type ListResponse[T any] struct {
	Items []T `json:"items"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

func pageOf(r *http.Request) store.Page {
	p := store.Page{After: r.URL.Query().Get("after")}
	_, _ = fmt.Sscanf(r.URL.Query().Get("limit"), "%d", &p.Limit)
	return p
}
