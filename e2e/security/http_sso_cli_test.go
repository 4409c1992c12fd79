//go:build !unit

package security

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

var authURLRE = regexp.MustCompile(`^\s+(http\S+/authorize\?\S+)$`)

// TestCLIBrowserLogin: `flotilla login --sso` signs in as `argocd login
// --sso` does. With a browser at hand ($BROWSER; a real HTTP client
// with a cookie jar plays the person's browser, following every redirect)
// it sends the person to the real provider (e2e/oidcprovider) with a PKCE
// S256 challenge, a state and a redirect to a random port of 127.0.0.1;
// a forged redirect with another state is refused and the CLI keeps
// waiting; the provider's real redirect completes the sign-in, and the
// saved session has the person's role. --sso-device uses the device flow
// although a browser is at hand.
func TestCLIBrowserLogin(t *testing.T) {
	t.Parallel()
	sso := startSSOHub(t, ssoHubSetup{
		Users: []harness.OIDCUser{
			{Username: "alice", Password: "alice-pw", Subject: "u-alice", Email: "alice@example.com", Groups: []string{"team-shop"}},
		},
		CLI: true, CLIRedirectURIs: []string{"http://127.0.0.1/callback"},
		Flags: []string{"--sso-deployer-group", "team-shop=shop"},
	})
	hubURL, prov := sso.URL, sso.Provider

	// The "browser" the CLI launches does nothing; the test's HTTP client
	// opens the page the CLI prints, as a person would.
	cfg := filepath.Join(t.TempDir(), "cli.json")
	cmd := exec.CommandContext(t.Context(), filepath.Join(binDir, "flotilla"), "login", "--sso", "--server", hubURL)
	cmd.Env = append(os.Environ(), "FLOTILLA_CONFIG="+cfg, "FLOTILLA_TOKEN=", "BROWSER=true")
	stdout, rest := &strings.Builder{}, &strings.Builder{}
	cmd.Stdout = stdout
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pr)
	var authURL string
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
		if m := authURLRE.FindStringSubmatch(sc.Text()); m != nil {
			authURL = m[1]
			break
		}
	}
	if authURL == "" {
		_ = cmd.Wait()
		t.Fatalf("flotilla login --sso printed no sign-in page: %s", rest.String())
	}
	go func() { _, _ = io.Copy(rest, pr) }()

	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(authURL, prov.Issuer) || q.Get("client_id") != "flotilla-cli" || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" ||
		redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" || redirect.Port() == "0" {
		t.Fatalf("sign-in page %s: want the provider's, client flotilla-cli, code with PKCE S256, a state and nonce, a redirect to 127.0.0.1 on a port", authURL)
	}

	// A redirect this sign-in did not start is refused; the CLI waits on.
	forged := *redirect
	forged.RawQuery = url.Values{"code": {"stolen"}, "state": {"not-" + q.Get("state")}}.Encode()
	// On a connection of its own: the CLI's server may close it after the
	// 400, and the sign-in below must not try to reuse it.
	once := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := once.Get(forged.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged redirect to the CLI: %d, want 400", resp.StatusCode)
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := signInAtProvider(t, &http.Client{Jar: jar}, authURL, "alice", "alice-pw")
	if code != http.StatusOK || !strings.Contains(body, "Signed in") {
		t.Fatalf("the provider's redirect to the CLI ended with %d: %s", code, body)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flotilla login --sso: %v\n%s", err, rest.String())
	}
	if out := stdout.String(); !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "deployer of shop") {
		t.Errorf("flotilla login --sso said %q", out)
	}
	var saved struct{ Server, Token string }
	b, _ := os.ReadFile(cfg)
	if err := json.Unmarshal(b, &saved); err != nil || saved.Token == "" || saved.Server != hubURL {
		t.Fatalf("CLI config after login --sso: %v", err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", hubURL+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+saved.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var who api.WhoamiResponse
	err = json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if err != nil || who.Name != "alice@example.com" || who.Role != api.RoleDeployer || !who.Person {
		t.Errorf("the saved session: %d %+v (%v); want alice@example.com, deployer, a person", resp.StatusCode, who, err)
	}

	// --sso-device: the device flow although a browser is at hand.
	dcfg := filepath.Join(t.TempDir(), "cli.json")
	dcmd, dout, derr := startCLILogin(t, hubURL, dcfg, "alice", "alice-pw", "--sso-device")
	if err := dcmd.Wait(); err != nil {
		t.Fatalf("flotilla login --sso-device: %v\n%s", err, derr.String())
	}
	if strings.Contains(derr.String(), "/authorize?") || !strings.Contains(dout.String(), "alice@example.com") {
		t.Errorf("flotilla login --sso-device: stdout %q stderr %q; want a device sign-in only", dout.String(), derr.String())
	}
}
