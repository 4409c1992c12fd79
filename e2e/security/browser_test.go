//go:build !unit

package security

import (
	"context"
	"testing"
	"time"

	testbrowser "github.com/flotilla-cd/flotilla/internal/testsupport/browser"
)

// browser starts headless Debian chromium (internal/testsupport/browser,
// as the web UI's tests do); the test is skipped only when chromium is
// missing and FLOTILLA_SKIP_BROWSER=1.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx, ok := testbrowser.Start(t, 2*time.Minute)
	if !ok {
		t.Skip("chromium not installed and FLOTILLA_SKIP_BROWSER=1")
	}
	return ctx
}
