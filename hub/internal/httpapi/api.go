package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/auth"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
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
	// Refreshed, when set, is told each repository a webhook or a refresh
	// made this hub poll (hubs sharing a store pass it on to the others).
	Refreshed func(repoURL string)
	// Status answers for apps' status and carries out operations on them
	// (sync, diff, rollback); its Deliver must be wired to
	// agentapi.Hooks.CommandResult. Nil: New makes one over Store, Fleet
	// and Controller, and diff then times out.
	Status *status.Service
	// SSO serves single sign-on under /auth/ (nil: none; GET /auth/info
	// then says so).
	SSO *auth.SSO
	// APITokenTTL is the lifetime of a token made without a TTL (default
	// 30 days); APITokenMaxTTL the longest a token may ask for (default
	// one year).
	APITokenTTL, APITokenMaxTTL time.Duration
	// Live sends live-view requests to agents (nil: New makes one that
	// no agent is attached to).
	Live *liveview.Broker
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
	if d.APITokenTTL <= 0 {
		d.APITokenTTL = 30 * 24 * time.Hour
	}
	if d.Live == nil {
		d.Live = liveview.New(liveview.Limits{})
	}
	if d.APITokenMaxTTL <= 0 {
		d.APITokenMaxTTL = 365 * 24 * time.Hour
	}
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
	if wantsPretty(r) {
		w = &prettyWriter{w}
	}
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
		m.Handle("GET /metrics", a.auth(permRead)(a.d.Metrics.ServeHTTP))
	}
	m.HandleFunc("POST /api/webhook", a.webhook)
	if a.d.UI != nil {
		m.Handle("GET /{$}", a.d.UI)
		m.Handle("GET /ui/", a.d.UI)
	}
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s (this hub serves /api/v1)", r.Method, r.URL.Path))
	})

	if a.d.SSO != nil {
		a.d.SSO.Routes(m)
	} else {
		m.HandleFunc("GET /auth/info", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, api.SSOInfo{}) })
	}

	read, deploy, admin := a.auth(permRead), a.auth(permDeploy), a.auth(permAdmin)
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
	m.Handle("POST /api/v1/apps/{name}/sync", deploy(a.syncApp))
	m.Handle("POST /api/v1/apps/{name}/refresh", deploy(a.refreshApp))
	m.Handle("POST /api/v1/apps/{name}/rollback", deploy(a.rollback))
	m.Handle("POST /api/v1/apps/{name}/unpin", deploy(a.unpin))
	m.Handle("POST /api/v1/refresh", admin(a.refresh))
	m.Handle("GET /api/v1/audit", read(a.listAudit))
	m.Handle("GET /api/v1/tokens", admin(a.listTokens))
	m.Handle("POST /api/v1/tokens", admin(a.createToken))
	m.Handle("DELETE /api/v1/tokens/{id}", admin(a.deleteToken))
	m.Handle("GET /api/v1/whoami", read(a.whoami))
	m.Handle("GET /api/v1/events", read(a.events))
	m.Handle("GET /api/v1/definitions", read(a.definitions))
	m.Handle("GET /api/v1/backup", admin(a.backup))
	a.liveRoutes(deploy)
	a.rolloutRoutes(m, read, deploy)
}

// refreshGit polls repoURL now, tells Refreshed, and reports whether the
// repository is tracked. A push that names its commit (a webhook's) lets
// the poll skip the ref listing and the refresh interval (RefreshPush).
func (a *API) refreshGit(repoURL string, push gitsource.Push) bool {
	if !a.d.Git.RefreshPush(repoURL, push) {
		return false
	}
	if a.d.Refreshed != nil {
		a.d.Refreshed(repoURL)
	}
	return true
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

func (a *API) audit(r *http.Request, action, target, detail string) {
	c := callerOf(r.Context())
	if c.Person {
		// The subject names the person even if their email changes.
		detail = strings.TrimSpace(detail + " sso-subject=" + c.Subject)
	}
	err := a.d.Store.AppendAudit(r.Context(), store.AuditEntry{
		Time: a.now(), Actor: c.Name, Action: action, Target: target, Detail: detail,
	})
	if err != nil {
		a.d.Log.Error("audit", "action", action, "target", target, "error", err)
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

// writeJSON answers v as compact JSON (one line, then a newline), or
// indented by two spaces when the request asked for ?pretty (see
// wantsPretty). Compact is what tools read: a list of 1,000 apps indented
// cost the hub more CPU (and garbage) to lay out than to build.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	if _, ok := w.(*prettyWriter); ok {
		enc.SetIndent("", "  ")
	}
	_ = enc.Encode(v)
}

// wantsPretty reports whether the request asks for indented JSON:
// ?pretty, ?pretty=true or ?pretty=1 (?pretty=false and ?pretty=0 do not).
func wantsPretty(r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return false
	}
	q := r.URL.Query()
	if !q.Has("pretty") {
		return false
	}
	switch strings.ToLower(q.Get("pretty")) {
	case "", "1", "true", "yes":
		return true
	}
	return false
}

// prettyWriter marks a response whose JSON writeJSON indents. It keeps
// the writer's other abilities: Flush for event streams and logs, and
// Unwrap for http.ResponseController.
type prettyWriter struct{ http.ResponseWriter }

func (p *prettyWriter) Flush() {
	if f, ok := p.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (p *prettyWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

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
