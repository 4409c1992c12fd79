package httpapi_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/auth"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// TestTokenRoles: a deployer token may sync, refresh, roll back and unpin
// the apps of its project and nothing else that changes state; an expired
// token is refused; a token made before tokens expired keeps its role; the
// audit log names the token.
func TestTokenRoles(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	for c := range apitest.Clusters {
		h.Connect(t, c)
	}
	mk := func(req api.CreateTokenRequest) api.CreateTokenResponse {
		t.Helper()
		var out api.CreateTokenResponse
		if code := call(t, h, h.AdminToken, "POST", "/api/v1/tokens", req, &out); code != http.StatusCreated {
			t.Fatalf("create token %+v: %d", req, code)
		}
		return out
	}
	deployer := mk(api.CreateTokenRequest{Name: "team-default", Role: "deployer", Projects: []string{"default"}, TTL: "2h"})
	other := mk(api.CreateTokenRequest{Name: "team-payments", Role: "deployer", Projects: []string{"payments"}})
	if got := deployer.ExpiresAt.Sub(deployer.CreatedAt); got != 2*time.Hour {
		t.Errorf("deployer token lifetime %s, want 2h", got)
	}
	if got := other.ExpiresAt.Sub(other.CreatedAt); got != 30*24*time.Hour {
		t.Errorf("default token lifetime %s, want 720h", got)
	}

	// The fixture's apps are in the default project.
	if code := call(t, h, deployer.Token, "POST", "/api/v1/apps/billing/sync", api.SyncRequest{Cluster: "staging-1"}, nil); code != http.StatusAccepted {
		t.Errorf("deployer of default syncing billing: %d, want 202", code)
	}
	if code := call(t, h, deployer.Token, "POST", "/api/v1/apps/billing/refresh", nil, nil); code != http.StatusAccepted {
		t.Errorf("deployer of default refreshing billing: %d, want 202", code)
	}
	for _, c := range []struct{ tok, method, path string }{
		{other.Token, "POST", "/api/v1/apps/billing/sync"},
		{other.Token, "POST", "/api/v1/apps/guestbook/rollback"},
		{other.Token, "POST", "/api/v1/apps/guestbook/unpin"},
		{deployer.Token, "POST", "/api/v1/clusters"},
		{deployer.Token, "DELETE", "/api/v1/clusters/staging-1"},
		{deployer.Token, "PATCH", "/api/v1/clusters/staging-1/labels"},
		{deployer.Token, "POST", "/api/v1/clusters/staging-1/token"},
		{deployer.Token, "POST", "/api/v1/tokens"},
		{deployer.Token, "GET", "/api/v1/tokens"},
		{deployer.Token, "GET", "/api/v1/backup"},
		{deployer.Token, "POST", "/api/v1/refresh"},
	} {
		if code := call(t, h, c.tok, c.method, c.path, map[string]any{}, nil); code != http.StatusForbidden {
			t.Errorf("deployer %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	if code := call(t, h, other.Token, "GET", "/api/v1/apps/billing", nil, nil); code != http.StatusOK {
		t.Errorf("deployer reading another project's app: %d, want 200", code)
	}
	var who api.WhoamiResponse
	call(t, h, deployer.Token, "GET", "/api/v1/whoami", nil, &who)
	if d := cmp.Diff(api.WhoamiResponse{Name: "team-default", Role: "deployer", Projects: []string{"default"}, ExpiresAt: deployer.ExpiresAt}, who); d != "" {
		t.Errorf("whoami (-want +got):\n%s", d)
	}

	// Refused requests.
	for _, req := range []api.CreateTokenRequest{
		{Name: "x", Role: "deployer"},
		{Name: "x", Role: "admin", Projects: []string{"default"}},
		{Name: "x", Role: "owner"},
		{Name: "x", TTL: "forever"},
		{Name: "x", TTL: "9000h"},
	} {
		if code := call(t, h, h.AdminToken, "POST", "/api/v1/tokens", req, nil); code != http.StatusBadRequest {
			t.Errorf("create token %+v: %d, want 400", req, code)
		}
	}

	// Expired: refused with 401 and the expiry named.
	raw, _, err := h.Store.IssueAPIToken(t.Context(), store.APIToken{Name: "old-ci", Role: store.RoleAdmin, ExpiresAt: time.Now().Add(-time.Minute)}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if code := call(t, h, raw, "GET", "/api/v1/apps", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", code)
	}
	// The fixture's tokens were made as before tokens expired (no expiry):
	// they keep their roles.
	if code := call(t, h, h.ReadOnlyToken, "POST", "/api/v1/apps/billing/sync", nil, nil); code != http.StatusForbidden {
		t.Errorf("legacy read-only token syncing: %d, want 403", code)
	}
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps", nil, nil); code != http.StatusOK {
		t.Errorf("legacy read-only token reading: %d, want 200", code)
	}

	var audit api.ListResponse[api.AuditEntry]
	call(t, h, h.AdminToken, "GET", "/api/v1/audit", nil, &audit)
	var got []string
	for _, e := range audit.Items {
		if strings.HasPrefix(e.Action, "app.") {
			got = append(got, e.Actor+" "+e.Action+" "+e.Target)
		}
	}
	if d := cmp.Diff([]string{"team-default app.refresh billing", "team-default app.sync billing"}, got); d != "" {
		t.Errorf("audit (-want +got):\n%s", d)
	}
}

// TestSessionCookieCSRF: a session cookie authenticates reads; a write
// with it needs the CSRF header equal to the CSRF cookie and must not come
// from another site; a bearer token needs neither.
func TestSessionCookieCSRF(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	h.Connect(t, "staging-1")
	raw, _, err := h.Store.IssueAPIToken(t.Context(), store.APIToken{
		Name: "dev@example.com", Role: store.RoleDeployer, Projects: []string{"default"}, Kind: store.KindWebSession,
		Subject: "u-1", Email: "dev@example.com", ExpiresAt: time.Now().Add(time.Hour),
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(h.Server.URL)
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(u, []*http.Cookie{{Name: auth.SessionCookieName, Value: raw}, {Name: auth.CSRFCookieName, Value: "csrf-1"}})
	c := &http.Client{Jar: jar}
	do := func(method, path string, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(method, h.Server.URL+path, strings.NewReader(`{"cluster":"staging-1"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		name   string
		method string
		hdr    map[string]string
		want   int
	}{
		{"read", "GET", nil, http.StatusOK},
		{"write without CSRF header", "POST", nil, http.StatusForbidden},
		{"write with a wrong CSRF header", "POST", map[string]string{auth.CSRFHeader: "csrf-2"}, http.StatusForbidden},
		{"write from another site", "POST", map[string]string{auth.CSRFHeader: "csrf-1", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"write from another origin", "POST", map[string]string{auth.CSRFHeader: "csrf-1", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"write from the hub's page", "POST", map[string]string{auth.CSRFHeader: "csrf-1", "Sec-Fetch-Site": "same-origin"}, http.StatusAccepted},
	} {
		path := "/api/v1/apps/billing/sync"
		if tt.method == "GET" {
			path = "/api/v1/whoami"
		}
		if got := do(tt.method, path, tt.hdr); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	var audit api.ListResponse[api.AuditEntry]
	call(t, h, h.AdminToken, "GET", "/api/v1/audit", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Actor != "dev@example.com" || !strings.Contains(audit.Items[0].Detail, "sso-subject=u-1") {
		t.Errorf("audit: %+v", audit.Items)
	}
}

// A token the hub cannot check because its store does not answer (a
// replica cut off from its API server; here the store is closed) is
// answered 503, not 401: the token may be good and the caller should try
// again or another replica, not sign in anew.
func TestTokenStoreDown(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	if code := call(t, h, h.AdminToken, "GET", "/api/v1/clusters", nil, nil); code != http.StatusOK {
		t.Fatalf("list clusters: %d", code)
	}
	if err := h.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if code := call(t, h, h.AdminToken, "GET", "/api/v1/clusters", nil, nil); code != http.StatusServiceUnavailable {
		t.Errorf("list clusters with the store down: %d, want 503", code)
	}
	if code := call(t, h, "nonsense", "GET", "/api/v1/clusters", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("a malformed token with the store down: %d, want 401", code)
	}
}
