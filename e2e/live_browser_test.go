//go:build !unit

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	testbrowser "github.com/flotilla-cd/flotilla/internal/testsupport/browser"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
)

// liveBrowser opens the hub's web UI in headless chromium: the app's
// cluster page shows the live resource tree with health colours, and a
// click on the Pod opens its log, which follows lines the pod writes.
func (e *env) liveBrowser(pc *cluster.ProcessCluster, pod string) {
	e.t.Helper()
	ctx, ok := testbrowser.Start(e.t, 2*time.Minute)
	if !ok {
		e.t.Log("web UI not checked: chromium not installed and FLOTILLA_SKIP_BROWSER=1")
		return
	}

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.hub.HTTPURL+"/"),
		chromedp.WaitVisible(css(`#login-form`)),
		chromedp.SendKeys(css(`#token`), e.hub.Token),
		chromedp.Click(css(`#login-form button`)),
		chromedp.WaitVisible(css(`table.matrix`)),
		chromedp.Navigate(e.hub.HTTPURL+"/#/apps/live"),
		chromedp.WaitVisible(css(`a[data-tree-link="alpha"]`)),
		// Clicked from the page's own script: the page may re-render the
		// link between a lookup and a CDP click (a stale node id).
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(document.querySelector('a[data-tree-link="alpha"]').click(), true)`)(ctx, t)
			return err
		}),
		chromedp.WaitVisible(css(`li[data-node="Pod/`+pod+`"]`)))
	if err != nil {
		e.t.Fatalf("browser: open the app's cluster page: %v", err)
	}
	depHealth, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('li[data-node="Deployment/web"] > .badge').textContent`))
	if err != nil {
		e.t.Fatal(err)
	}
	podColour, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('li[data-node="Pod/`+pod+`"] > .node')).backgroundColor`))
	if err != nil {
		e.t.Fatal(err)
	}
	if depHealth != "Healthy" || podColour == "" || podColour == "rgba(0, 0, 0, 0)" {
		e.t.Errorf("tree: Deployment web health %q, pod colour %q; want Healthy and a health colour", depHealth, podColour)
	}
	nested, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.querySelector('li[data-node="Deployment/web"] li[data-node^="ReplicaSet/"] li[data-node="Pod/%s"]')`, pod)))
	if err != nil || !nested {
		e.t.Errorf("tree: the Pod is not nested under a ReplicaSet under Deployment web (%v)", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(css(`a[data-pod="`+pod+`"]`)), chromedp.WaitVisible(css(`#log`))); err != nil {
		e.t.Fatalf("browser: open the pod's log: %v", err)
	}
	line := fmt.Sprintf("browser line %d", time.Now().UnixNano())
	e.eventually("the log view shows a line the pod writes", func() error {
		appendPodLog(e.t, pc.PodLogFile(), line)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#log').textContent`))
		if err != nil {
			return err
		}
		if !strings.Contains(got, line) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#log-state').textContent`))
			return fmt.Errorf("log view (%s) has %d bytes without %q", state, len(got), line)
		}
		return nil
	})
}
