//go:build !unit

package security

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestSSORolesReadAgain: with --oidc-roles-max-age a signed-in person's
// groups are read again at the real provider once their roles are older
// than that. A web session (a real HTTP client signed in through the real
// redirect flow) is refreshed with the provider's refresh token and
// carries on while the groups give the same role; once an admin of the
// provider moves the person to another group, the next re-read ends the
// session (401 naming the change) and it is gone from the hub. A CLI
// session past the age must sign in again.
func TestSSORolesReadAgain(t *testing.T) {
	t.Parallel()
	sso := startSSOHub(t, ssoHubSetup{
		Users: []harness.OIDCUser{
			{Username: "alice", Password: "alice-pw", Subject: "u-alice", Email: "alice@example.com", Groups: []string{"team-shop"}},
		},
		CLI:   true,
		Flags: []string{"--oidc-roles-max-age", "1s", "--sso-deployer-group", "team-shop=shop", "--sso-readonly-group", "staff"},
	})
	h, hubURL, prov := sso.Hub, sso.URL, sso.Provider

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	if code, body := signInAtProvider(t, browser, hubURL+"/auth/login", "alice", "alice-pw"); code != http.StatusOK {
		t.Fatalf("sign-in ended with %d: %s", code, body)
	}
	hub, _ := url.Parse(hubURL)
	names := map[string]bool{}
	for _, c := range jar.Cookies(hub) {
		names[c.Name] = true
	}
	if !names["flotilla_session"] || !names["flotilla_refresh"] {
		t.Fatalf("cookies after sign-in: %v; want the session and the sealed refresh token", names)
	}
	whoami := func() (int, string) {
		resp, err := browser.Get(hubURL + "/api/v1/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Same groups: the session is refreshed at the provider and carries on.
	eventually(t, time.Minute, "the hub reads alice's groups again, same role", func() error {
		code, body := whoami()
		var who api.WhoamiResponse
		if err := json.Unmarshal([]byte(body), &who); code != http.StatusOK || err != nil || who.Role != api.RoleDeployer {
			t.Fatalf("whoami with unchanged groups: %d %s", code, body)
		}
		if !h.Grep("roles read again") {
			return fmt.Errorf("not re-read yet")
		}
		return nil
	})

	// A CLI session of alice, before her groups change.
	cliCfg := filepath.Join(t.TempDir(), "cli.json")
	cmd, _, cliErr := startCLILogin(t, hubURL, cliCfg, "alice", "alice-pw", "--sso-device")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flotilla login --sso-device: %v\n%s", err, cliErr.String())
	}

	// The provider's admin moves alice from team-shop to staff.
	if err := prov.SetGroups(t.Context(), "alice", "staff"); err != nil {
		t.Fatal(err)
	}
	var ended string
	eventually(t, time.Minute, "alice's web session ends once her groups changed", func() error {
		code, body := whoami()
		if code == http.StatusOK {
			return fmt.Errorf("still signed in: %s", body)
		}
		ended = body
		return nil
	})
	if !strings.Contains(ended, "the groups of alice@example.com changed (readonly now)") {
		t.Errorf("401 answer %q does not say the groups changed", ended)
	}
	if code, body := whoami(); code != http.StatusUnauthorized {
		t.Errorf("after the session ended: whoami %d %s; want 401", code, body)
	}
	var sessions api.ListResponse[api.TokenView]
	if err := h.DoJSON(t.Context(), "GET", "/api/v1/tokens", nil, &sessions); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions.Items {
		if s.Kind == api.KindWebSession {
			t.Errorf("web session %+v still stored after its roles changed", s)
		}
	}

	eventually(t, time.Minute, "alice's CLI session must sign in again", func() error {
		_, err := cli(t, cliCfg, "app", "list")
		if err == nil {
			return fmt.Errorf("CLI session still accepted")
		}
		if !strings.Contains(err.Error(), "run `flotilla login --sso` again") {
			t.Fatalf("CLI refused with %v; want it told to sign in again", err)
		}
		return nil
	})
}
