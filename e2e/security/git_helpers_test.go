//go:build !unit

package security

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// writeApp writes an Application named name on repoURL into appsDir. Its
// destination is a cluster that does not exist: the hub still follows the
// repo and shows the app's revision or error.
func writeApp(t *testing.T, appsDir, name, repoURL string) {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata:
  name: %s
spec:
  source:
    repoURL: %q
    targetRevision: main
    path: .
  destination:
    namespace: default
    clusters: [nowhere]
`, name, repoURL)
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(appsDir, name+".yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appState returns the app as the admin sees it through the CLI.
func appState(t *testing.T, h *harness.Hub, name string) (api.AppView, error) {
	t.Helper()
	apps, err := h.Apps(t.Context())
	if err != nil {
		return api.AppView{}, err
	}
	for _, a := range apps {
		if a.Name == name {
			return a, nil
		}
	}
	return api.AppView{}, fmt.Errorf("app %s not listed", name)
}

// waitAppError waits until app name shows an error containing every part.
func waitAppError(t *testing.T, h *harness.Hub, name string, parts ...string) string {
	t.Helper()
	var msg string
	eventually(t, time.Minute, "error on app "+name, func() error {
		a, err := appState(t, h, name)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if !strings.Contains(a.Error, p) {
				return fmt.Errorf("app %s error %q does not say %q", name, a.Error, p)
			}
		}
		msg = a.Error
		return nil
	})
	return msg
}

// recorder is an attacker's git host: a real HTTP(S) server that answers
// 401 asking for basic auth (as a private git host does, so that a client
// holding a credential sends it) and records every Authorization header.
type recorder struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	auth     []string
}

func newRecorder(t *testing.T, tls bool) *recorder {
	t.Helper()
	r := &recorder{}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests++
		if a := req.Header.Get("Authorization"); a != "" {
			r.auth = append(r.auth, a)
		}
		r.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	})
	if tls {
		r.Server = httptest.NewTLSServer(h)
	} else {
		r.Server = httptest.NewServer(h)
	}
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) seen() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, append([]string(nil), r.auth...)
}

// readOnlyToken makes a read-only API token.
func readOnlyToken(t *testing.T, h *harness.Hub) string {
	t.Helper()
	var out api.CreateTokenResponse
	if err := h.DoJSON(t.Context(), http.MethodPost, "/api/v1/tokens", api.CreateTokenRequest{Name: "viewer", Role: api.RoleReadOnly}, &out); err != nil {
		t.Fatal(err)
	}
	return out.Token
}

// getAs fetches path from the hub's API with token and returns the body.
func getAs(t *testing.T, h *harness.Hub, token, path string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.HTTPURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if !json.Valid(b) {
		t.Fatalf("GET %s: not JSON: %s", path, b)
	}
	return b
}

// waitRevision waits until app name resolves to revision.
func waitRevision(t *testing.T, h *harness.Hub, name, revision string) {
	t.Helper()
	eventually(t, 2*time.Minute, "app "+name+" at "+revision, func() error {
		a, err := appState(t, h, name)
		if err != nil {
			return err
		}
		if a.Revision != revision {
			return fmt.Errorf("app %s: revision %q, error %q; want %s", name, a.Revision, a.Error, revision)
		}
		return nil
	})
}
