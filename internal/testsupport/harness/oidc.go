package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// OIDCUser is a person the test provider knows.
type OIDCUser struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Subject  string   `json:"subject"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
}

// OIDCClient is a client of the test provider: confidential (Secret,
// RedirectURIs) or public (the CLI: device flow, or authorization code
// with PKCE to a loopback redirect URI listed in RedirectURIs, any port).
type OIDCClient struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret,omitempty"`
	RedirectURIs []string `json:"redirectURIs,omitempty"`
	Public       bool     `json:"public,omitempty"`
}

// OIDCProvider is a running e2e/oidcprovider process: a real OpenID
// Connect provider (zitadel/oidc's op package) with users, passwords and
// groups.
type OIDCProvider struct {
	*Proc
	Issuer string
}

var (
	oidcOnce sync.Once
	oidcBin  string
	oidcErr  error
)

// OIDCProviderBinary builds e2e/oidcprovider (its own module) once per test
// process into a temporary folder and returns its path; the Go build cache
// makes later builds quick.
func OIDCProviderBinary() (string, error) {
	oidcOnce.Do(func() {
		_, self, _, _ := runtime.Caller(0)
		mod := filepath.Join(filepath.Dir(self), "..", "..", "..", "e2e", "oidcprovider")
		dir, err := os.MkdirTemp("", "flotilla-oidcprovider-")
		if err != nil {
			oidcErr = err
			return
		}
		oidcBin = filepath.Join(dir, "oidcprovider")
		cmd := exec.Command("go", "build", "-trimpath", "-o", oidcBin, ".")
		cmd.Dir = mod
		if out, err := cmd.CombinedOutput(); err != nil {
			oidcErr = fmt.Errorf("build the test OIDC provider in %s: %w\n%s", mod, err, out)
		}
	})
	return oidcBin, oidcErr
}

// StartOIDCProvider starts the provider on a free loopback port with users
// and clients, logging under dir, and waits until it serves its discovery
// document.
func StartOIDCProvider(ctx context.Context, dir string, users []OIDCUser, clients []OIDCClient) (*OIDCProvider, error) {
	bin, err := OIDCProviderBinary()
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(map[string]any{"users": users, "clients": clients})
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "oidcprovider.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := StartProc("oidcprovider", dir, bin, []string{"--addr", addr, "--config", cfgPath}, nil)
	if err != nil {
		return nil, err
	}
	o := &OIDCProvider{Proc: p, Issuer: "http://" + addr}
	err = Eventually(ctx, 30*time.Second, 50*time.Millisecond, func() error {
		if done, err := p.Exited(); done {
			return fmt.Errorf("provider exited: %v\n%s", err, p.Tail(4000))
		}
		resp, err := http.Get(o.Issuer + "/.well-known/openid-configuration")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("discovery: HTTP %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		p.Kill()
		return nil, err
	}
	return o, nil
}

// SetGroups changes a user's groups at the provider, as a directory admin
// does: ID tokens issued from now on, refreshes included, carry them.
func (o *OIDCProvider) SetGroups(ctx context.Context, user string, groups ...string) error {
	form := url.Values{"user": {user}, "groups": {strings.Join(groups, ",")}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Issuer+"/test/groups", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("set groups of %s at the provider: HTTP %d", user, resp.StatusCode)
	}
	return nil
}
