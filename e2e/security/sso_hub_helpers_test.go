//go:build !unit

package security

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// ssoHubSetup is what an SSO scenario varies: the people the provider
// knows, whether the CLI's public client is registered, whether the hub
// serves HTTPS itself, and the hub's role flags.
type ssoHubSetup struct {
	// AppsDir holds the hub's Application definitions; empty means none.
	AppsDir string
	Users   []harness.OIDCUser
	// CLI registers the public client "flotilla-cli" (with CLIRedirectURIs)
	// and passes --oidc-cli-client-id to the hub.
	CLI             bool
	CLIRedirectURIs []string
	// TLS makes the hub serve HTTPS with a self-signed certificate.
	TLS   bool
	Flags []string
}

// ssoHub is a hub signing people in through a real OIDC provider process
// (e2e/oidcprovider).
type ssoHub struct {
	*harness.Hub
	Provider *harness.OIDCProvider
	URL      string
	Addr     string // host:port of URL
	Secret   string // the hub's client secret at the provider
	CertFile string // with TLS: the hub's certificate, its own root
}

// startSSOHub starts the provider and a hub that trusts it as its issuer,
// with the confidential client "flotilla" (its secret in a file, as an
// operator would give it), and stops both when the test ends, printing
// their logs if it failed.
func startSSOHub(t *testing.T, s ssoHubSetup) ssoHub {
	t.Helper()
	dir := t.TempDir()
	if s.AppsDir == "" {
		s.AppsDir = filepath.Join(dir, "apps")
		if err := os.MkdirAll(s.AppsDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	httpAddr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	out := ssoHub{URL: "http://" + httpAddr, Addr: httpAddr}
	var keyFile string
	if s.TLS {
		out.CertFile, keyFile = selfSignedCert(t, dir)
		out.URL = "https://" + httpAddr
	}
	secret := "hub-client-secret-" + filepath.Base(dir)
	clients := []harness.OIDCClient{{ID: "flotilla", Secret: secret, RedirectURIs: []string{out.URL + "/auth/callback"}}}
	flags := []string{"--oidc-issuer", "", "--oidc-client-id", "flotilla", "--oidc-client-secret-file", filepath.Join(dir, "oidc-secret"), "--oidc-hub-url", out.URL}
	if s.CLI {
		clients = append(clients, harness.OIDCClient{ID: "flotilla-cli", Public: true, RedirectURIs: s.CLIRedirectURIs})
		flags = append(flags, "--oidc-cli-client-id", "flotilla-cli")
	}
	prov, err := harness.StartOIDCProvider(t.Context(), t.TempDir(), s.Users, clients)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", prov.Tail(4000))
		}
		prov.Stop()
	})
	flags[1] = prov.Issuer
	out.Provider, out.Secret = prov, secret
	if err := os.WriteFile(filepath.Join(dir, "oidc-secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := harness.StartHub(t.Context(), binDir, t.TempDir(), harness.HubOptions{
		AppsDir: s.AppsDir, HTTPAddr: httpAddr, TLSCertFile: out.CertFile, TLSKeyFile: keyFile,
		Extra: append(flags, s.Flags...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log:\n%s", h.Tail(8000))
		}
		h.Stop()
	})
	out.Hub = h
	return out
}
