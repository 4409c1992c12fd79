package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
)

// Every answer, the UI's included, forbids framing (clickjacking) and
// content sniffing.
func TestSecurityHeaders(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	for _, path := range []string{"/", "/healthz", "/api/v1/apps"} {
		resp, err := http.Get(h.Server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q has no frame-ancestors 'none'", path, csp)
		}
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", path, got)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, got)
		}
	}
}
