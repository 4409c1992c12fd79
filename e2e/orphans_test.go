//go:build !unit

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestOrphanedResourceWarning: an Argo CD AppProject with
// orphanedResources.warn and an ignore glob; a ConfigMap made by hand in
// the app's destination namespace shows up, after `flotilla app refresh`,
// as the app's orphaned object with Argo CD's OrphanedResourceWarning
// condition, in the API and in `flotilla app get`; what the ignore glob
// matches, the namespace's default ServiceAccount and kube-root-ca.crt,
// the app's own objects and an object in another namespace do not. Deleted,
// it goes away at the next refresh. The agent's own interval is an hour:
// the looks come from the sync and the refreshes.
func TestOrphanedResourceWarning(t *testing.T) {
	parallel(t)
	e := newEnv(t, "orph")
	rev := e.commit("shop", map[string]string{"shop/cm.yaml": configMap("shop-config", "v1")})
	e.writeApp("project", `apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: shop-team, namespace: argocd}
spec:
  sourceRepos: ['*']
  destinations: [{name: orph, namespace: shop}]
  orphanedResources:
    warn: true
    ignore: [{group: '', kind: ConfigMap, name: 'scratch-*'}]
`)
	e.writeApp("shop", fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: shop, namespace: argocd}
spec:
  project: shop-team
  source: {repoURL: %s, targetRevision: main, path: shop}
  destination: {name: orph, namespace: shop}
  syncPolicy: {automated: {prune: true, selfHeal: true}, syncOptions: [CreateNamespace=true]}
`, e.repo.URL))
	e.startHub(hubDefaults())
	j, err := e.hub.AddCluster(t.Context(), "orph")
	if err != nil {
		t.Fatal(err)
	}
	a, err := harness.StartAgent(binDir, e.dir, e.clusters["orph"].Kubeconfig(), j, "--orphans-interval", "1h")
	if err != nil {
		t.Fatal(err)
	}
	e.agents["orph"] = a
	e.root.Cleanup(func() { e.agents["orph"].Stop() })
	e.waitSynced("shop", rev, "orph")
	e.waitApp("shop", "reports nothing orphaned after its sync", func(v api.AppView) error {
		if c := v.Cluster("orph"); c == nil || c.Orphaned == nil || c.Orphaned.Count != 0 || c.Conditions != nil {
			return fmt.Errorf("clusters %+v", v.Clusters)
		}
		return nil
	})

	cms := e.clients["orph"].CoreV1().ConfigMaps
	for ns, name := range map[string]string{"shop": "stray", "default": "elsewhere"} {
		if _, err := cms(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cms("shop").Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "scratch-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.cli("app", "refresh", "shop")
	want := []api.OrphanedRef{{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "stray"}}
	warning := []api.Condition{{Type: api.ConditionOrphanedResourceWarning, Message: "Application has 1 orphaned resources"}}
	e.waitApp("shop", "the hand-made ConfigMap is orphaned", func(v api.AppView) error {
		c := v.Cluster("orph")
		if c == nil || c.Orphaned == nil {
			return fmt.Errorf("clusters %+v", v.Clusters)
		}
		if d := cmp.Diff(&api.OrphanedView{Count: 1, Objects: want}, c.Orphaned); d != "" {
			return fmt.Errorf("orphaned (-want +got):\n%s", d)
		}
		if d := cmp.Diff(warning, c.Conditions); d != "" {
			return fmt.Errorf("conditions (-want +got):\n%s", d)
		}
		return nil
	})
	out := e.cli("app", "get", "shop")
	for _, s := range []string{"OrphanedResourceWarning: Application has 1 orphaned resources", "ORPHANED KIND", "stray"} {
		if !strings.Contains(out, s) {
			t.Errorf("flotilla app get shop does not show %q:\n%s", s, out)
		}
	}

	if err := cms("shop").Delete(t.Context(), "stray", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.cli("app", "refresh", "shop")
	e.waitApp("shop", "nothing orphaned once the ConfigMap is deleted", func(v api.AppView) error {
		c := v.Cluster("orph")
		if c == nil || c.Orphaned == nil || c.Orphaned.Count != 0 || c.Conditions != nil {
			return fmt.Errorf("clusters %+v", v.Clusters)
		}
		return nil
	})
	if out := e.cli("app", "get", "shop"); strings.Contains(out, "Orphaned") || strings.Contains(out, "ORPHANED") {
		t.Errorf("flotilla app get shop still shows orphaned objects:\n%s", out)
	}
}
