//go:build !unit

package security

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestSSOSessionCookieSecureOverHTTPS: a hub serving HTTPS itself
// (--http-tls-cert-file) with an https hub URL signs a person in through
// the real provider, followed by a real HTTP client; the session cookie it
// sets is Secure, HttpOnly and SameSite=Strict (and the short-lived
// sign-in cookie Secure too), and that session works for the API over
// HTTPS.
func TestSSOSessionCookieSecureOverHTTPS(t *testing.T) {
	t.Parallel()
	sso := startSSOHub(t, ssoHubSetup{
		Users: []harness.OIDCUser{
			{Username: "alice", Password: "alice-pw", Subject: "u-alice", Email: "alice@example.com", Groups: []string{"staff"}},
		},
		TLS:   true,
		Flags: []string{"--sso-readonly-group", "staff"},
	})
	h, hubURL, certFile := sso.Hub, sso.URL, sso.CertFile
	if h.HTTPURL != hubURL {
		t.Fatalf("hub at %s, want %s", h.HTTPURL, hubURL)
	}

	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	rec := &hopRecorder{rt: tr}
	client := &http.Client{Transport: rec, Jar: jar}

	if code, body := signInAtProvider(t, client, hubURL+"/auth/login", "alice", "alice-pw"); code != http.StatusOK {
		t.Fatalf("sign-in over HTTPS ended with %d: %s", code, body)
	}
	cookies := map[string]*http.Cookie{}
	for _, c := range rec.setCookies(sso.Addr) {
		if c.MaxAge >= 0 && c.Value != "" {
			cookies[c.Name] = c
		}
	}
	s := cookies["flotilla_session"]
	if s == nil {
		t.Fatalf("no session cookie set by the hub; cookies %v", cookies)
	}
	if !s.Secure || !s.HttpOnly || s.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie over HTTPS: Secure %v HttpOnly %v SameSite %v; want Secure, HttpOnly, Strict", s.Secure, s.HttpOnly, s.SameSite)
	}
	for name, c := range cookies {
		if !c.Secure {
			t.Errorf("cookie %s set over HTTPS without Secure", name)
		}
	}
	if len(cookies) < 2 {
		t.Errorf("cookies set by the hub: %v; want the sign-in cookie and the session (and CSRF) cookies", cookies)
	}

	// The session is good for the API over HTTPS.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", hubURL+"/api/v1/whoami", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who api.WhoamiResponse
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || who.Name != "alice@example.com" || !who.Person {
		t.Errorf("whoami with the session over HTTPS: %d %+v (%v)", resp.StatusCode, who, err)
	}
}
