//go:build !unit

package webui_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
	"github.com/flotilla-cd/flotilla/hub/internal/webui"
)

// clickUntil clicks sel until want is visible: a live update may re-render
// the view between finding the button and clicking it, so a step is tried
// again, a bounded number of times.
func clickUntil(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		stepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = chromedp.Do(stepCtx, chromedp.Click(css(sel)), chromedp.WaitVisible(css(want)))
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("click %s until %s: %v", sel, want, err)
}

func refresh(t *testing.T, h *apitest.Hub) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.Server.URL+"/api/v1/refresh", nil)
	req.Header.Set("Authorization", "Bearer "+h.AdminToken)
	resp, err := h.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestRolloutInBrowser: the app page shows a rollout live (steps, clusters
// per step, the current step, why it waits) and its buttons pause,
// resume, approve, abort and retry it.
func TestRolloutInBrowser(t *testing.T) {
	h := apitest.New(t, apitest.Options{UI: webui.Handler(), Apps: map[string]string{"web.yaml": apitest.RolloutApp}})
	h.Connect(t, "prod-eu-1")
	h.Connect(t, "prod-us-1")
	ctx := browser(t)
	const sec = `section.rollout[data-rollout="web"]`
	err := chromedp.Do(ctx,
		chromedp.Navigate(h.Server.URL+"/#/apps/web"),
		chromedp.WaitVisible(css(`#login-form`)),
		chromedp.SendKeys(css(`#token`), h.AdminToken),
		chromedp.Click(css(`#login-form button`)),
		chromedp.WaitVisible(css(sec+`[data-phase="Completed"]`)),
	)
	if err != nil {
		t.Fatalf("open the app view: %v", err)
	}

	// A new revision: prod-eu-1 first, then step 2 waits for approval.
	h.WriteApp(t, "web.yaml", apitest.RolloutAppAtMain)
	refresh(t, h)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(sec+`[data-phase="WaitingApproval"]`))); err != nil {
		t.Fatalf("rollout waiting for approval: %v", err)
	}
	if got := waitText(t, ctx, sec+` [data-rollout-reason]`, "step 2 (us) waits for approval"); got != "step 2 (us) waits for approval" {
		t.Errorf("reason %q", got)
	}
	if got := waitText(t, ctx, `[data-waiting="prod-us-1"]`, "waiting for step 2 (us)"); !strings.Contains(got, "waiting for step 2 (us)") {
		t.Errorf("prod-us-1 says %q", got)
	}
	if got := text(t, ctx, sec+` tr[data-step="1"]`); !strings.Contains(got, "Done") || !strings.Contains(got, "prod-eu-1") {
		t.Errorf("step 1 row %q", got)
	}
	if got := text(t, ctx, sec+` tr.current`); !strings.Contains(got, "WaitingApproval") || !strings.Contains(got, "prod-us-1") {
		t.Errorf("current step row %q", got)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		shot := filepath.Join(os.TempDir(), "flotilla-ui-rollout.png")
		if err := os.WriteFile(shot, png, 0o644); err == nil {
			t.Logf("screenshot of the rollout view: %s", shot)
		}
	}

	clickUntil(t, ctx, sec+` button[data-rollout-action="pause"]`, sec+`[data-paused="true"]`)
	clickUntil(t, ctx, sec+` button[data-rollout-action="resume"]`, sec+`[data-paused="false"] button[data-rollout-action="approve"]`)
	clickUntil(t, ctx, sec+` button[data-rollout-action="approve"]`, sec+`[data-phase="Completed"]`)
	if v, _ := h.Status.Rollout("web"); v.Phase != "Completed" || v.To != h.Repo.Commits[1] {
		t.Errorf("after approve: %s to %s", v.Phase, v.To)
	}

	// Back to the first commit: a new rollout; abort returns prod-eu-1,
	// retry starts it again.
	h.WriteApp(t, "web.yaml", apitest.RolloutApp)
	refresh(t, h)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(sec+`[data-phase="WaitingApproval"]`))); err != nil {
		t.Fatalf("second rollout waiting for approval: %v", err)
	}
	clickUntil(t, ctx, sec+` button[data-rollout-action="abort"]`, sec+`[data-phase="Aborted"]`)
	h.WaitFor(t, 20*time.Second, "prod-eu-1 back at the previous revision", func() bool {
		v, _ := h.Status.View("web")
		c := v.Cluster("prod-eu-1")
		return c != nil && c.Revision == h.Repo.Commits[1] && c.Sync == "Synced"
	})
	clickUntil(t, ctx, sec+` button[data-rollout-action="retry"]`, sec+`[data-phase="WaitingApproval"]`)
}
