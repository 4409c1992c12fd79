//go:build !unit

package security

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestSSOProjectDeployer signs people in through a real OpenID Connect
// provider (e2e/oidcprovider, its own process) and checks what their groups
// let them do on a real hub with a real agent:
//   - in headless Chromium, through the real redirect flow (hub -> provider
//     login form -> hub callback), a deployer of project shop sees a Sync
//     button only on shop's app, syncs it (the sync history names them), and
//     is refused (403) on the payments app and on cluster admin calls made
//     with the same browser session;
//   - a cross-site form post with that session cookie is refused;
//   - the CLI signs in through the same provider (no browser can be
//     launched, so with the device flow, the code entered at the provider's
//     page by a real HTTP client) and gets the same rights;
//   - a person whose groups map to no role is not signed in;
//   - no session or token appears in the hub's log.
func TestSSOProjectDeployer(t *testing.T) {
	t.Parallel()
	kubeconfig := startCluster(t, "c1")
	_, repo := gitRepo(t, "apps")
	if err := repo.Write(map[string][]byte{
		"shop/cm.yaml": []byte(cm("shop-config")),
		"pay/cm.yaml":  []byte(cm("pay-config")),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("two apps"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	appsDir := filepath.Join(dir, "apps")
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, def := range map[string]string{
		"shop-web":         manualApp("shop-web", "shop", repo.URL, "shop", "shop"),
		"pay-api":          manualApp("pay-api", "payments", repo.URL, "pay", "pay"),
		"project-shop":     project("shop", repo.URL, "shop"),
		"project-payments": project("payments", repo.URL, "pay"),
	} {
		if err := os.WriteFile(filepath.Join(appsDir, name+".yaml"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	sso := startSSOHub(t, ssoHubSetup{
		AppsDir: appsDir,
		Users: []harness.OIDCUser{
			{Username: "alice", Password: "alice-pw", Subject: "u-alice", Email: "alice@example.com", Groups: []string{"staff", "team-shop"}},
			{Username: "mallory", Password: "mallory-pw", Subject: "u-mallory", Email: "mallory@example.com", Groups: []string{"contractors"}},
		},
		CLI:   true,
		Flags: []string{"--sso-deployer-group", "team-shop=shop", "--sso-readonly-group", "staff", "--sso-admin-group", "platform"},
	})
	h, hubURL := sso.Hub, sso.URL
	startAgent(t, h, "c1", kubeconfig)
	eventually(t, 60*time.Second, "apps target c1", func() error {
		for _, name := range []string{"shop-web", "pay-api"} {
			a, err := h.App(t.Context(), name)
			if err != nil {
				return err
			}
			if c := a.Cluster("c1"); c == nil || !c.Connected || c.Sync != "OutOfSync" {
				return fmt.Errorf("%s: %+v", name, a)
			}
		}
		return nil
	})

	// ---- web UI, through the real redirect flow ----
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(hubURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#sso-login`)),
		chromedp.Click(chromedp.CSS(`#sso-login`)),
		chromedp.WaitVisible(chromedp.CSS(`#username`)), // the provider's page
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "alice-pw"),
		chromedp.Click(chromedp.CSS(`#submit`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-app-row="shop-web"]`)), // back on the hub, signed in
	)
	if err != nil {
		t.Fatalf("sign in through the provider: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(loc); u.Host != sso.Addr || u.RawQuery != "" {
		t.Errorf("after sign-in the browser is at %s, want the hub's page without a query", loc)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#who`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who, "alice@example.com") || !strings.Contains(who, "deployer of shop") {
		t.Errorf("header names %q, want alice@example.com, deployer of shop", who)
	}
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.querySelectorAll('button[data-sync-app="shop-web"]').length, document.querySelectorAll('button[data-sync-app="pay-api"]').length]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(buttons) != 2 || buttons[0] != 1 || buttons[1] != 0 {
		t.Errorf("Sync buttons of shop-web and pay-api: %v; want [1 0] (the UI offers only what the viewer may do)", buttons)
	}
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range cookies.Cookies {
		if c.Name == "flotilla_session" {
			session = c.Value
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie: HttpOnly %v SameSite %s; want HttpOnly, Strict", c.HTTPOnly, c.SameSite)
			}
		}
	}
	if session == "" {
		t.Fatalf("no session cookie after sign-in: %+v", cookies.Cookies)
	}

	// Sync shop-web from the UI; the history names alice.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sync-app="shop-web"]`))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "shop-web synced by alice", func() error {
		var hist api.ListResponse[api.HistoryEntry]
		if err := h.DoJSON(t.Context(), "GET", "/api/v1/apps/shop-web/history", nil, &hist); err != nil {
			return err
		}
		if len(hist.Items) == 0 || hist.Items[0].InitiatedBy != "alice@example.com" || hist.Items[0].Result != "Succeeded" {
			return fmt.Errorf("history %+v", hist.Items)
		}
		return nil
	})

	// The same browser session, by script from the hub's own page (CSRF
	// header included): another project's app and cluster admin calls are
	// refused.
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v1/apps/pay-api/sync"},
		{"POST", "/api/v1/apps/pay-api/rollback"},
		{"POST", "/api/v1/clusters"},
		{"DELETE", "/api/v1/clusters/c1"},
		{"POST", "/api/v1/tokens"},
	} {
		js := fmt.Sprintf(`fetch(%q, {method: %q, headers: {"Content-Type": "application/json", "X-Flotilla-CSRF": csrf()}, body: "{}"}).then(r => r.status)`, c.path, c.method)
		code, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusForbidden {
			t.Errorf("deployer of shop in the browser: %s %s -> %d, want 403", c.method, c.path, code)
		}
	}
	// A cross-site form post carrying the session cookie is refused.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", hubURL+"/api/v1/apps/shop-web/sync", strings.NewReader("{}"))
	req.Header.Set("Cookie", "flotilla_session="+session)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if code := httpStatus(t, req); code != http.StatusForbidden {
		t.Errorf("cross-site post with the session cookie: %d, want 403", code)
	}

	// ---- CLI, device flow through the same provider ----
	cliCfg := filepath.Join(t.TempDir(), "cli.json")
	out := cliLoginSSO(t, hubURL, cliCfg, "alice", "alice-pw")
	if !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "deployer of shop") {
		t.Errorf("flotilla login --sso said %q", out)
	}
	var saved struct{ Server, Token string }
	b, _ := os.ReadFile(cliCfg)
	if err := json.Unmarshal(b, &saved); err != nil || saved.Token == "" || saved.Server != hubURL {
		t.Fatalf("CLI config after login --sso: %s (%v)", b, err)
	}
	if _, err := cli(t, cliCfg, "app", "sync", "shop-web"); err != nil {
		t.Errorf("CLI deployer of shop syncing shop-web: %v", err)
	}
	for _, args := range [][]string{{"app", "sync", "pay-api"}, {"cluster", "add", "c2"}, {"cluster", "remove", "c1"}} {
		_, err := cli(t, cliCfg, args...)
		if err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("CLI deployer of shop: flotilla %s: %v, want not allowed", strings.Join(args, " "), err)
		}
	}

	// ---- a person whose groups have no role ----
	noRole := cliLoginSSOFails(t, hubURL, filepath.Join(t.TempDir(), "cli.json"), "mallory", "mallory-pw")
	if !strings.Contains(noRole, "none of your groups") {
		t.Errorf("login of a person without a role: %q", noRole)
	}

	// ---- the audit log names the person ----
	var audit api.ListResponse[api.AuditEntry]
	if err := h.DoJSON(t.Context(), "GET", "/api/v1/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	syncs := 0
	for _, e := range audit.Items {
		if e.Action == "app.sync" {
			syncs++
			if e.Actor != "alice@example.com" || e.Target != "shop-web" || !strings.Contains(e.Detail, "sso-subject=u-alice") {
				t.Errorf("audit entry %+v: want alice@example.com syncing shop-web, subject u-alice", e)
			}
		}
	}
	if syncs != 2 {
		t.Errorf("audit holds %d syncs, want 2 (UI and CLI): %+v", syncs, audit.Items)
	}

	// ---- no secret in the hub's log ----
	for what, s := range map[string]string{"web session": session, "CLI session": saved.Token, "admin token": h.Token, "client secret": sso.Secret} {
		if h.Grep(s) {
			t.Errorf("the hub's log holds the %s", what)
		}
	}
}

func httpStatus(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// cli runs the flotilla CLI with the saved config at cfg.
func cli(t *testing.T, cfg string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(binDir, "flotilla"), args...)
	cmd.Env = append(os.Environ(), "FLOTILLA_CONFIG="+cfg, "FLOTILLA_SERVER=", "FLOTILLA_TOKEN=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), nil
}

var userCodeRE = regexp.MustCompile(`open (\S+) and enter the code (\S+)`)

// startCLILogin starts `flotilla login --sso`, reads the provider's page
// and user code from its stderr and signs in there as user with a plain
// HTTP client (what a person does in a browser). It returns the running
// command and its stdout.
//
// With --sso (the default args) no browser can be launched (no $BROWSER,
// no graphical session), so the CLI falls back to the device flow by
// itself; with --sso-device a browser is at hand ($BROWSER), and the flag
// alone must choose the device flow.
func startCLILogin(t *testing.T, hubURL, cfg, user, pass string, args ...string) (*exec.Cmd, *strings.Builder, *strings.Builder) {
	t.Helper()
	if len(args) == 0 {
		args = []string{"--sso"}
	}
	browser := "BROWSER="
	if slices.Contains(args, "--sso-device") {
		browser = "BROWSER=true"
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(binDir, "flotilla"), append([]string{"login", "--server", hubURL}, args...)...)
	cmd.Env = append(os.Environ(), "FLOTILLA_CONFIG="+cfg, "FLOTILLA_TOKEN=", browser, "DISPLAY=", "WAYLAND_DISPLAY=")
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
	var page, code string
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
		if m := userCodeRE.FindStringSubmatch(sc.Text()); m != nil {
			page, code = m[1], m[2]
			break
		}
	}
	if code == "" {
		_ = cmd.Wait()
		t.Fatalf("flotilla login %s printed no code: %s", strings.Join(args, " "), rest.String())
	}
	go func() { _, _ = io.Copy(rest, pr) }()
	resp, err := http.PostForm(page, url.Values{"user_code": {code}, "username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="done"`) {
		t.Fatalf("entering the code at %s: %d %s", page, resp.StatusCode, body)
	}
	return cmd, stdout, rest
}

func cliLoginSSO(t *testing.T, hubURL, cfg, user, pass string) string {
	t.Helper()
	cmd, stdout, stderr := startCLILogin(t, hubURL, cfg, user, pass)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flotilla login --sso: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

func cliLoginSSOFails(t *testing.T, hubURL, cfg, user, pass string) string {
	t.Helper()
	cmd, _, stderr := startCLILogin(t, hubURL, cfg, user, pass)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("flotilla login --sso of %s succeeded, want it refused", user)
	}
	if _, err := os.Stat(cfg); err == nil {
		t.Errorf("a refused login saved %s", cfg)
	}
	return stderr.String()
}

func cm(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  k: v\n", name)
}

// project lets its apps deploy from repo into namespace on any cluster.
func project(name, repo, namespace string) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Project
metadata: {name: %s}
spec:
  sourceRepos: [%q]
  destinations: [{clusters: ["*"], namespace: %s}]
  clusterResourceWhitelist: [{group: "", kind: Namespace}]
`, name, repo, namespace)
}

// manualApp is an Application of project with manual sync.
func manualApp(name, project, repo, path, namespace string) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata:
  name: %s
spec:
  project: %s
  source:
    repoURL: %s
    targetRevision: main
    path: %s
  destination:
    namespace: %s
    clusters: [c1]
  syncPolicy:
    syncOptions: [CreateNamespace=true]
`, name, project, repo, path, namespace)
}
