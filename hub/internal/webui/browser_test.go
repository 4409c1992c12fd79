//go:build !unit

package webui_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
	"github.com/flotilla-cd/flotilla/hub/internal/webui"
	testbrowser "github.com/flotilla-cd/flotilla/internal/testsupport/browser"
)

// browser starts headless Debian chromium (internal/testsupport/browser);
// the test is skipped only when chromium is missing and
// FLOTILLA_SKIP_BROWSER=1.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx, ok := testbrowser.Start(t, 90*time.Second)
	if !ok {
		t.Skip("chromium not installed and FLOTILLA_SKIP_BROWSER=1")
	}
	return ctx
}

// css is a CSS selector.
func css(s string) chromedp.CSS { return chromedp.CSS(s) }

const cellSel = `td.cell[data-app="billing"][data-cluster="prod-eu-1"]`

// text runs a text query.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a loaded machine
	for {
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err == nil {
			return s
		}
		// The query found the element, then the page re-rendered it
		// before its text was read: query again.
		if !strings.Contains(err.Error(), "No node with given id found") || time.Now().After(deadline) {
			t.Fatalf("text of %s: %v", sel, err)
		}
	}
}

// waitText reads the text of sel until it contains want or 30 s pass (the
// page may show an element before it fills it), and returns the last text.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a loaded machine
	for {
		got := text(t, ctx, sel)
		if strings.Contains(got, want) || time.Now().After(deadline) {
			return got
		}
		select {
		case <-ctx.Done():
			return got
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestFleetSyncInBrowser opens the fleet view, clicks Sync on an OutOfSync
// app and sees its cells turn Synced without a reload, then checks the
// cluster and app views, and saves a screenshot.
func TestFleetSyncInBrowser(t *testing.T) {
	h := apitest.New(t, apitest.Options{UI: webui.Handler()})
	h.Connect(t, "prod-eu-1")
	h.Connect(t, "prod-us-1")
	ctx := browser(t)

	err := chromedp.Do(ctx,
		chromedp.Navigate(h.Server.URL+"/"),
		chromedp.WaitVisible(css(`#login-form`)),
		chromedp.SendKeys(css(`#token`), h.AdminToken),
		chromedp.Click(css(`#login-form button`)),
		chromedp.WaitVisible(css(cellSel+`[data-sync="OutOfSync"]`)),
	)
	if err != nil {
		t.Fatalf("open fleet view: %v", err)
	}
	// A reload would drop this marker.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__flotillaNoReload = "kept"`)); err != nil {
		t.Fatal(err)
	}
	if title, _ := chromedp.Run(ctx, chromedp.Title()); title != "Flotilla" {
		t.Errorf("title %q", title)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(css(`button[data-sync-app="billing"]`)),
		chromedp.WaitVisible(css(cellSel+`[data-sync="Synced"][data-health="Healthy"]`)),
		chromedp.WaitVisible(css(`td.cell[data-app="billing"][data-cluster="prod-us-1"][data-sync="Synced"]`)),
	)
	if err != nil {
		t.Fatalf("sync billing from the fleet view: %v", err)
	}
	if marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__flotillaNoReload`)); err != nil || marker != "kept" {
		t.Errorf("the page reloaded (marker %q, %v)", marker, err)
	}
	if flash := waitText(t, ctx, "#flash", "Sync of billing sent to prod-eu-1, prod-us-1"); !strings.Contains(flash, "Sync of billing sent to prod-eu-1, prod-us-1") {
		t.Errorf("flash message %q", flash)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(os.TempDir(), "flotilla-ui-fleet.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the fleet view: %s", shot)

	// Cluster view: connection, agent version, labels.
	err = chromedp.Do(ctx,
		chromedp.Navigate(h.Server.URL+"/#/clusters"),
		chromedp.WaitVisible(css(`tr[data-cluster-row="staging-1"]`)),
	)
	if err != nil {
		t.Fatalf("cluster view: %v", err)
	}
	connected := text(t, ctx, `tr[data-cluster-row="prod-eu-1"] td:nth-child(2)`)
	agent := text(t, ctx, `tr[data-cluster-row="prod-eu-1"] td:nth-child(4)`)
	labels := text(t, ctx, `tr[data-cluster-row="staging-1"] td:nth-child(6)`)
	if strings.TrimSpace(connected) != "connected" || agent != "v0.1.0-test" || labels != "env=stagingregion=eu" {
		t.Errorf("cluster view: connected %q agent %q labels %q", connected, agent, labels)
	}

	// App view: the manual app is out of sync on a cluster that connects
	// now, with its drift diff; Sync there turns it Synced live.
	h.Connect(t, "staging-1")
	// A live update may re-render the view between finding the summary and
	// clicking it (chromedp: "Could not find node"); such a step is tried
	// again, a bounded number of times.
	for attempt := 1; ; attempt++ {
		stepCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = chromedp.Do(stepCtx,
			chromedp.Navigate(h.Server.URL+"/#/apps/billing"),
			chromedp.WaitVisible(css(`section[data-target="staging-1"] details summary`)),
			chromedp.Click(css(`section[data-target="staging-1"] details summary`)),
			chromedp.WaitVisible(css(`section[data-target="staging-1"] pre.diff`)),
			chromedp.WaitVisible(css(`button[data-rollback]`)),
		)
		cancel()
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("app view: %v", err)
		}
		t.Logf("app view, attempt %d: %v; trying again", attempt, err)
	}
	if diff := waitText(t, ctx, `section[data-target="staging-1"] pre.diff`, "+++ desired /ConfigMap /billing-config"); !strings.Contains(diff, "+++ desired /ConfigMap /billing-config") {
		t.Errorf("drift diff %q", diff)
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		shot = filepath.Join(os.TempDir(), "flotilla-ui-app.png")
		if os.WriteFile(shot, png, 0o644) == nil {
			t.Logf("screenshot of the app view: %s", shot)
		}
	}
	err = chromedp.Do(ctx,
		chromedp.Click(css(`button[data-sync-cluster="staging-1"]`)),
		chromedp.WaitVisible(css(`section[data-target="staging-1"] h2 .sync-Synced`)),
	)
	if err != nil {
		t.Fatalf("sync from the app view: %v", err)
	}
}

// TestTokenInURLIgnored: a token in the address (?token=, as links in
// chat or a phishing page would carry it) signs nobody in: the login form
// shows and the page makes no authenticated call with it.
func TestTokenInURLIgnored(t *testing.T) {
	h := apitest.New(t, apitest.Options{UI: webui.Handler()})
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(h.Server.URL+"/?token="+h.AdminToken),
		chromedp.WaitVisible(css(`#login-form`)),
	)
	if err != nil {
		t.Fatalf("open with ?token=: %v", err)
	}
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("flotilla-token") || ""`))
	if err != nil {
		t.Fatal(err)
	}
	if stored != "" {
		t.Errorf("the token from the address was kept: %q", stored)
	}
}

// TestLoginForm: without a token the login form shows; a wrong token is
// refused there; the right one opens the fleet view.
func TestLoginForm(t *testing.T) {
	h := apitest.New(t, apitest.Options{UI: webui.Handler()})
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(h.Server.URL+"/"),
		chromedp.WaitVisible(css(`#login-form`)),
		chromedp.SendKeys(css(`#token`), "flt_0123456789abcdef_wrong"),
		chromedp.Click(css(`#login-form button`)),
		chromedp.WaitVisible(css(`#login-error`)),
	)
	if err != nil {
		t.Fatalf("login with a wrong token: %v", err)
	}
	if msg := waitText(t, ctx, "#login-error", "invalid token"); !strings.Contains(msg, "invalid token") {
		t.Errorf("login error %q", msg)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(css(`#token`), h.ReadOnlyToken),
		chromedp.Click(css(`#login-form button`)),
		chromedp.WaitVisible(css(`table.matrix`)),
	)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
}
