// Package browser starts headless Debian chromium (chromedp) for the
// tests that drive the web UI: the UI's own tests, the security suite's
// sign-in test and the e2e live view. Tests only.
package browser

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// SkipEnv, set to 1, lets tests pass over the browser when chromium is
// not installed; otherwise a missing chromium fails them (`make deps`
// installs it).
const SkipEnv = "FLOTILLA_SKIP_BROWSER"

// Start starts a headless chromium for t, closed when t ends, and returns
// its chromedp context, bounded by timeout. ok is false (and the context
// nil) when chromium is missing and SkipEnv is 1: the caller skips or
// leaves out its browser checks. Missing otherwise, t fails.
func Start(t testing.TB, timeout time.Duration) (ctx context.Context, ok bool) {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv(SkipEnv) == "1" {
			return nil, false
		}
		t.Fatalf("chromium not found: install it (make deps) or set %s=1", SkipEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("user-data-dir", t.TempDir()),
		chromedp.Flag("window-size", "1280,800"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx, true
}
