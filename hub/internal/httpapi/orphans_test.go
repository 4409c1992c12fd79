package httpapi_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

const orphansProject = `apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team}
spec:
  sourceRepos: ['*']
  destinations: [{server: '*', namespace: '*'}]
  namespaceResourceBlacklist: [{group: '', kind: ResourceQuota}]
  orphanedResources:
    warn: true
    ignore: [{group: '', kind: ConfigMap, name: 'ignored-*'}]
`

const orphansApp = `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: shop}
spec:
  project: team
  source: {repoURL: {{repo}}, targetRevision: main, path: billing}
  destination:
    namespace: shop
    clusterSelector: {matchLabels: {env: staging}}
  syncPolicy:
    automated: {}
`

// TestOrphanedResourcesInAppStatus: the hub sends an AppProject's
// orphanedResources (warn, its ignore list and the kinds the project
// denies) in the bundles of the project's apps, and shows what the agent
// reports: the count and an OrphanedResourceWarning condition in the app
// list, the objects too in the app's page; an app of a project without the
// setting shows nothing.
func TestOrphanedResourcesInAppStatus(t *testing.T) {
	h := apitest.New(t, apitest.Options{Apps: map[string]string{"team.yaml": orphansProject, "shop.yaml": orphansApp}})
	ag := h.Connect(t, "staging-1")

	want := &apiv1alpha1.OrphanedResources{Warn: true, Ignore: []*apiv1alpha1.OrphanedKey{
		{Kind: "ConfigMap", Name: "ignored-*"}, {Kind: "ResourceQuota"},
	}}
	if d := cmp.Diff(want, ag.Held("shop").GetSyncPolicy().GetOrphanedResources(), protocmp.Transform()); d != "" {
		t.Errorf("the bundle's orphaned_resources (-want +got):\n%s", d)
	}
	if got := ag.Held("billing").GetSyncPolicy().GetOrphanedResources(); got != nil {
		t.Errorf("an app of the default project got orphaned_resources %v", got)
	}

	ag.SetOrphaned("shop",
		&apiv1alpha1.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "stray"},
		&apiv1alpha1.ObjectRef{Version: "v1", Kind: "Secret", Namespace: "shop", Name: "loose"},
	)
	warning := []api.Condition{{Type: api.ConditionOrphanedResourceWarning, Message: "Application has 2 orphaned resources"}}
	var v api.AppView
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps/shop", nil, &v); code != 200 {
		t.Fatalf("GET /api/v1/apps/shop: %d", code)
	}
	cv := v.Cluster("staging-1")
	if cv == nil {
		t.Fatalf("shop has no staging-1 entry: %+v", v.Clusters)
	}
	wantView := &api.OrphanedView{Count: 2, Objects: []api.OrphanedRef{
		{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "stray"},
		{Version: "v1", Kind: "Secret", Namespace: "shop", Name: "loose"},
	}}
	if d := cmp.Diff(wantView, cv.Orphaned); d != "" {
		t.Errorf("GET /api/v1/apps/shop orphaned (-want +got):\n%s", d)
	}
	if d := cmp.Diff(warning, cv.Conditions); d != "" {
		t.Errorf("GET /api/v1/apps/shop conditions (-want +got):\n%s", d)
	}

	var list api.ListResponse[api.AppView]
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps", nil, &list); code != 200 {
		t.Fatalf("GET /api/v1/apps: %d", code)
	}
	for _, a := range list.Items {
		for _, c := range a.Clusters {
			switch {
			case a.Name == "shop":
				if d := cmp.Diff(&api.OrphanedView{Count: 2}, c.Orphaned); d != "" {
					t.Errorf("GET /api/v1/apps: shop orphaned (-want +got):\n%s", d)
				}
				if d := cmp.Diff(warning, c.Conditions); d != "" {
					t.Errorf("GET /api/v1/apps: shop conditions (-want +got):\n%s", d)
				}
			case c.Orphaned != nil || c.Conditions != nil:
				t.Errorf("GET /api/v1/apps: %s on %s shows orphaned %+v, conditions %+v; its project has no orphanedResources", a.Name, c.Cluster, c.Orphaned, c.Conditions)
			}
		}
	}

	// Nothing orphaned any more: the count says so, and no warning.
	ag.SetOrphaned("shop")
	v = api.AppView{}
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps/shop", nil, &v); code != 200 {
		t.Fatalf("GET /api/v1/apps/shop: %d", code)
	}
	cv = v.Cluster("staging-1")
	if d := cmp.Diff(&api.OrphanedView{}, cv.Orphaned); d != "" || cv.Conditions != nil {
		t.Errorf("with nothing orphaned: orphaned (-want +got):\n%s\nconditions %+v", d, cv.Conditions)
	}
}
