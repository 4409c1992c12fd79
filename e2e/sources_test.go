//go:build !unit

package e2e

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// scenarioMultiSource: an Argo CD Application with three sources, as Argo
// CD documents them: a chart whose value file comes from the ref source
// ($values/...), the ref source itself, and a plain folder. Both objects
// reach the cluster with the values from the ref; a commit changing only
// the value file rolls out; the app shows each source's commit.
func scenarioMultiSource(e *env) {
	rev := e.commit("multi-source v1", map[string]string{
		"ms/chart/Chart.yaml":        "apiVersion: v2\nname: ms\nversion: 0.1.0\n",
		"ms/chart/values.yaml":       "tier: default\n",
		"ms/chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ms-chart}\ndata:\n  tier: {{ .Values.tier | quote }}\n",
		"ms/values/prod.yaml":        "tier: prod\n",
		"ms/extra/cm.yaml":           cmManifest("ms-extra", map[string]string{"from": "folder"}),
	})
	app := fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: ms}
spec:
  project: default
  sources:
  - repoURL: %[1]s
    targetRevision: main
    path: ms/chart
    helm: {valueFiles: [$values/ms/values/prod.yaml]}
  - {repoURL: %[1]s, targetRevision: main, ref: values}
  - {repoURL: %[1]s, targetRevision: main, path: ms/extra}
  destination: {name: alpha, namespace: ms}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
`, e.repo.URL)
	e.writeApp("ms", app)
	want := rev + "," + rev + "," + rev
	e.waitSynced("ms", want, "alpha")
	e.waitConfigMap("alpha", "ms", "ms-chart", map[string]string{"tier": "prod"})
	e.waitConfigMap("alpha", "ms", "ms-extra", map[string]string{"from": "folder"})
	e.waitApp("ms", "each source's commit", func(a api.AppView) error {
		if fmt.Sprint(a.Revisions) != fmt.Sprint([]string{rev, rev, rev}) {
			return fmt.Errorf("revisions %v", a.Revisions)
		}
		return nil
	})

	rev2 := e.commit("multi-source values", map[string]string{"ms/values/prod.yaml": "tier: prod-2\n"})
	e.waitSynced("ms", rev2+","+rev2+","+rev2, "alpha")
	e.waitConfigMap("alpha", "ms", "ms-chart", map[string]string{"tier": "prod-2"})

	if err := os.Remove(filepath.Join(e.appsDir, "ms.yaml")); err != nil {
		e.t.Fatal(err)
	}
}
