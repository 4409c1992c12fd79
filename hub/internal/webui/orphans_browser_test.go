//go:build !unit

package webui_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
	"github.com/flotilla-cd/flotilla/hub/internal/webui"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestOrphanedResourcesInBrowser: the app page of an app whose project
// sets orphanedResources.warn shows, on the cluster where the agent found
// some, the OrphanedResourceWarning and the orphaned objects; another
// cluster's section shows neither.
func TestOrphanedResourcesInBrowser(t *testing.T) {
	h := apitest.New(t, apitest.Options{UI: webui.Handler(), Apps: map[string]string{
		"team.yaml": `apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team}
spec:
  sourceRepos: ['*']
  destinations: [{server: '*', namespace: '*'}]
  orphanedResources: {warn: true}
`,
		"shop.yaml": `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: shop}
spec:
  project: team
  source: {repoURL: {{repo}}, targetRevision: main, path: billing}
  destination:
    namespace: shop
    clusterSelector: {matchLabels: {region: eu}}
  syncPolicy:
    automated: {}
`,
	}})
	ag := h.Connect(t, "staging-1")
	h.Connect(t, "prod-eu-1")
	ag.SetOrphaned("shop",
		&apiv1alpha1.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "stray"},
		&apiv1alpha1.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "old-web"},
	)
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(h.Server.URL+"/"),
		chromedp.WaitVisible(css(`#login-form`)),
		chromedp.SendKeys(css(`#token`), h.ReadOnlyToken),
		chromedp.Click(css(`#login-form button`)),
		chromedp.WaitVisible(css(`table.matrix`)),
		chromedp.Navigate(h.Server.URL+"/#/apps/shop"),
		chromedp.WaitVisible(css(`section[data-target="staging-1"] tr[data-orphan="Deployment/old-web"]`)),
	)
	if err != nil {
		t.Fatalf("app page: %v", err)
	}
	if got := waitText(t, ctx, `section[data-target="staging-1"] p[data-condition="OrphanedResourceWarning"]`, "Application has 2 orphaned resources"); !strings.Contains(got, "Application has 2 orphaned resources") {
		t.Errorf("warning %q", got)
	}
	table := text(t, ctx, `section[data-target="staging-1"] details[data-orphaned]`)
	for _, want := range []string{"2 orphaned resources", "ConfigMap", "stray", "apps/Deployment", "old-web"} {
		if !strings.Contains(table, want) {
			t.Errorf("orphaned table %q does not show %q", table, want)
		}
	}
	others, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('section[data-target="prod-eu-1"] [data-orphaned], section[data-target="prod-eu-1"] [data-condition]')].map(e => e.outerHTML)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(others) != 0 {
		t.Errorf("prod-eu-1, where nothing is orphaned, shows %v", others)
	}
}
