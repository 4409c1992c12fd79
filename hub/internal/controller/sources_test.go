//go:build !unit

package controller

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// valuesChart reads its data from values the chart's own repository does
// not hold.
var valuesChart = map[string]string{
	"charts/web/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
	"charts/web/values.yaml": "tier: default\nreplicas: 1\n",
	"charts/web/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data:
  tier: {{ .Values.tier | quote }}
  replicas: {{ .Values.replicas | quote }}
`,
}

const multiSourceApp = `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web}
spec:
  sources:
  - repoURL: %[1]s
    targetRevision: main
    path: charts/web
    helm:
      valueFiles: [values.yaml, $values/env/prod.yaml]
  - repoURL: %[2]s
    targetRevision: main
    ref: values
  - repoURL: %[2]s
    targetRevision: main
    path: extra
  destination: {name: a, namespace: web}
`

// newRepo serves a second repository from w's git server.
func (w *world) newRepo(name string) *gitserver.Repo {
	w.t.Helper()
	r, err := w.srv.NewRepo(name, filepath.Join(w.t.TempDir(), name))
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func pushTo(t *testing.T, r *gitserver.Repo, files map[string]string) string {
	t.Helper()
	m := map[string][]byte{}
	for k, v := range files {
		m[k] = []byte(v)
	}
	if err := r.Write(m); err != nil {
		t.Fatal(err)
	}
	rev, err := r.CommitAndPush("change")
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestMultipleSources renders an Argo CD Application with three sources
// from two real git repositories: a chart whose value file comes from the
// other repository ($values), the values repository lending its files, and
// a plain folder of that repository rendered beside the chart. The
// target shows each source's commit; a commit to the values repository
// alone changes the render.
func TestMultipleSources(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": nil})
	chartRev := w.push(valuesChart)
	vals := w.newRepo("values")
	valsRev := pushTo(t, vals, map[string]string{
		"env/prod.yaml":  "tier: prod\n",
		"extra/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {from: values-repo}\n",
		"unrelated.yaml": "not: rendered\n",
	})
	w.app("web", fmt.Sprintf(multiSourceApp, w.repo.URL, vals.URL))
	ctx := t.Context()
	if err := w.c.SetCapabilities(ctx, "a", "v1.31.0", []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	if ts.Error != "" || ts.Digest == "" {
		t.Fatalf("target: error %q digest %q", ts.Error, ts.Digest)
	}
	if diff := cmp.Diff([]string{chartRev, valsRev, valsRev}, ts.Revisions); diff != "" {
		t.Errorf("target revisions (-want +got):\n%s", diff)
	}
	if want := chartRev + "," + valsRev + "," + valsRev; ts.Revision != want {
		t.Errorf("target revision %q, want %q", ts.Revision, want)
	}
	if got := w.c.Snapshot().Apps[0].Revisions; !cmp.Equal(got, ts.Revisions) {
		t.Errorf("app revisions %v, want %v", got, ts.Revisions)
	}
	if diff := cmp.Diff(map[string]string{"web": "tier=prod replicas=1", "extra": "from=values-repo"}, configMaps(t, w, "a")); diff != "" {
		t.Errorf("rendered objects (-want +got):\n%s", diff)
	}

	// A commit to the values repository alone: a new render and revision.
	valsRev2 := pushTo(t, vals, map[string]string{"env/prod.yaml": "tier: prod\nreplicas: 3\n"})
	pollOnce(t, w, vals.URL)
	w.c.ReconcileNow(ctx)
	ts = w.target("web", "a")
	if diff := cmp.Diff([]string{chartRev, valsRev2, valsRev2}, ts.Revisions); diff != "" || ts.Error != "" {
		t.Errorf("after the values commit: error %q, revisions (-want +got):\n%s", ts.Error, diff)
	}
	if got := configMaps(t, w, "a")["web"]; got != "tier=prod replicas=3" {
		t.Errorf("after the values commit: web has %s", got)
	}
}

// TestMultipleSourcesErrors: a value file missing from the ref's
// repository and an object rendered by two sources are errors on the app
// naming what is at fault.
func TestMultipleSourcesErrors(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": nil})
	w.push(valuesChart)
	vals := w.newRepo("values")
	pushTo(t, vals, map[string]string{
		"env/other.yaml": "tier: other\n",
		"extra/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {from: values-repo}\n",
	})
	w.app("web", fmt.Sprintf(multiSourceApp, w.repo.URL, vals.URL))
	ctx := t.Context()
	if err := w.c.SetCapabilities(ctx, "a", "v1.31.0", []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	w.c.ReconcileNow(ctx)
	if ts := w.target("web", "a"); !strings.Contains(ts.Error, "$values/env/prod.yaml") || !strings.Contains(ts.Error, "spec.sources[0]") {
		t.Errorf("missing value file: error %q, want one naming the file and the source", ts.Error)
	}

	pushTo(t, vals, map[string]string{"env/prod.yaml": "tier: prod\n"})
	pollOnce(t, w, vals.URL)
	w.c.ReconcileNow(ctx)
	if ts := w.target("web", "a"); !strings.Contains(ts.Error, "/ConfigMap /web is also rendered by spec.sources[0]") {
		t.Errorf("object rendered twice: error %q", ts.Error)
	}
}

// configMaps returns the ConfigMaps of app web's bundle for cluster, each
// as its sorted data "k=v ...".
func configMaps(t *testing.T, w *world, cluster string) map[string]string {
	t.Helper()
	objs, err := manifestObjects(w, cluster)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "ConfigMap" {
			continue
		}
		d, _ := o.Object["data"].(map[string]any)
		var parts []string
		for _, k := range []string{"tier", "replicas", "from"} {
			if v, ok := d[k]; ok {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
		}
		out[o.GetName()] = strings.Join(parts, " ")
	}
	return out
}
