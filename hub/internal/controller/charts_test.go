//go:build !unit

package controller

import (
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource"
	"github.com/flotilla-cd/flotilla/hub/testsupport/chartrepo"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// TestChartFromRepository: an Argo CD Application with a chart from a Helm
// repository (basic auth, TLS), pinned to 1.2.x. It renders 1.2.0 with the
// cluster's capabilities; 1.2.1 published is rolled out on the next
// lookup, 1.3.0 is not; with the repository down the app shows the error
// and its cluster keeps the last bundle.
func TestChartFromRepository(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	repo := chartrepo.New(t, "ci", "s3cret")
	add := func(v string) {
		repo.Add(chart.Metadata{Name: "web", Version: v, KubeVersion: ">=1.25.0-0"}, map[string]string{
			"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata:\n  version: {{ .Chart.Version | quote }}\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n  replicas: {{ .Values.replicas | quote }}\n",
			"values.yaml":       "replicas: 1\n",
		})
	}
	add("1.2.0")
	charts, err := chartsource.New(chartsource.Options{Dir: t.TempDir(), CABundle: repo.CA, Auth: func(url string) (string, string, bool, error) {
		return "ci", "s3cret", strings.HasPrefix(url, repo.URL), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.c.opts.Charts = charts
	w.c.repos.charts = charts
	ctx := t.Context()
	if err := w.c.SetCapabilities(ctx, "a", "v1.31.2", []string{"v1", "v1/ConfigMap"}); err != nil {
		t.Fatal(err)
	}
	w.app("web", fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: default
  source:
    repoURL: %s
    chart: web
    targetRevision: 1.2.x
    helm:
      valuesObject: {replicas: 3}
  destination: {name: a, namespace: web}
  syncPolicy: {automated: {prune: true}}
`, repo.URL))
	data := func() map[string]any {
		t.Helper()
		b := w.fl.DesiredOf("a")["web"]
		if b == nil {
			t.Fatalf("no bundle for a: %+v", w.target("web", "a"))
		}
		objs, err := manifest.DecodeObjects(b)
		if err != nil || len(objs) != 1 {
			t.Fatalf("objects %v, %v", objs, err)
		}
		d, _ := objs[0].Object["data"].(map[string]any)
		return d
	}
	w.c.ReconcileNow(ctx)
	if d := data(); d["version"] != "1.2.0" || d["kube"] != "v1.31.2" || d["replicas"] != "3" {
		t.Errorf("rendered %v, want version 1.2.0 for kube v1.31.2 with replicas 3", d)
	}
	if ts := w.target("web", "a"); !strings.HasPrefix(ts.Revision, "1.2.0@sha256:") || ts.Error != "" {
		t.Errorf("target %+v, want revision 1.2.0@sha256:...", ts)
	}

	add("1.2.1")
	add("1.3.0")
	w.c.repos.refreshNow(ctx) // what the poll does
	w.c.ReconcileNow(ctx)
	if d := data(); d["version"] != "1.2.1" {
		t.Errorf("after 1.2.1 and 1.3.0 were published: version %v, want 1.2.1", d["version"])
	}

	digest := w.target("web", "a").Digest
	repo.SetDown(true)
	w.c.repos.refreshNow(ctx)
	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	if !strings.Contains(ts.Error, "503") || !strings.Contains(ts.Error, repo.URL) || !strings.Contains(ts.Error, "web") {
		t.Errorf("repository down: target error %q, want the 503 naming repository and chart", ts.Error)
	}
	if got := w.fl.DesiredOf("a")["web"].GetDigest(); got != digest {
		t.Errorf("repository down: desired digest %s, want the last good %s", got, digest)
	}
}

// TestKustomizeHelmChartFromRepository: a kustomization in git whose
// helmCharts pull a chart from a Helm repository (basic auth, TLS): with
// --kustomize-enable-helm the hub fetches it through its chart cache and
// credentials and renders it with the cluster's capabilities, the
// kustomization's namespace applied to it; with it off the app has an
// error naming the kustomization and the flag, and nothing is sent.
func TestKustomizeHelmChartFromRepository(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	repo := chartrepo.New(t, "ci", "s3cret")
	repo.Add(chart.Metadata{Name: "web", Version: "2.0.0"}, map[string]string{
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-web}\ndata:\n  version: {{ .Chart.Version | quote }}\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n  greeting: {{ .Values.greeting | quote }}\n",
		"values.yaml":       "greeting: hello\n",
	})
	charts, err := chartsource.New(chartsource.Options{Dir: t.TempDir(), CABundle: repo.CA, Auth: func(url string) (string, string, bool, error) {
		return "ci", "s3cret", strings.HasPrefix(url, repo.URL), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.c.opts.Charts = charts
	ctx := t.Context()
	if err := w.c.SetCapabilities(ctx, "a", "v1.32.1", []string{"v1", "v1/ConfigMap"}); err != nil {
		t.Fatal(err)
	}
	w.push(map[string]string{"kz/kustomization.yaml": fmt.Sprintf(`namespace: web
helmCharts:
- name: web
  repo: %s
  version: 2.0.0
  releaseName: front
  valuesInline: {greeting: hi}
`, repo.URL)})
	w.app("web", appYAML(w.repo.URL, "kz", "env: prod"))

	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	if !strings.Contains(ts.Error, "kustomization.yaml: helmCharts: Helm chart inflation in kustomize is off on this hub (start it with --kustomize-enable-helm") {
		t.Errorf("inflation off: target error %q, want one naming the kustomization and the flag", ts.Error)
	}
	if b := w.fl.DesiredOf("a")["web"]; b != nil {
		t.Errorf("inflation off: a bundle was sent: %v", b.GetDigest())
	}

	// A hub started with the option (the render of that commit failed
	// for good on this one): the next commit renders.
	w.c.opts.KustomizeHelm = true
	w.push(map[string]string{"kz/README.md": "inflated by the hub\n"})
	pollOnce(t, w, w.repo.URL)
	w.c.ReconcileNow(ctx)
	b := w.fl.DesiredOf("a")["web"]
	if b == nil {
		t.Fatalf("no bundle: %+v", w.target("web", "a"))
	}
	objs, err := manifest.DecodeObjects(b)
	if err != nil || len(objs) != 1 {
		t.Fatalf("objects %v, %v", objs, err)
	}
	o := objs[0]
	d, _ := o.Object["data"].(map[string]any)
	if o.GetName() != "front-web" || o.GetNamespace() != "web" || d["version"] != "2.0.0" || d["kube"] != "v1.32.1" || d["greeting"] != "hi" {
		t.Errorf("rendered %s/%s %v, want web/front-web from chart 2.0.0 for kube v1.32.1 greeting hi", o.GetNamespace(), o.GetName(), d)
	}
}
