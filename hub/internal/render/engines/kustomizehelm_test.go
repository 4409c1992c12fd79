package engines

import (
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// webChart is a chart whose ConfigMap says its values, release, namespace
// and the cluster version, with a PreSync hook and a test hook.
func webChart(prefix string) map[string]string {
	return map[string]string{
		prefix + "/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 1.0.0\n",
		prefix + "/values.yaml": "greeting: hello\ncolor: blue\nsize: s\n",
		prefix + "/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
data:
  greeting: {{ .Values.greeting | quote }}
  color: {{ .Values.color | quote }}
  size: {{ .Values.size | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
{{- if .Capabilities.APIVersions.Has "example.com/v1" }}
  widgets: "yes"
{{- end }}
`,
		prefix + "/templates/hook.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: hook-succeeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: registry.invalid/m:1}]
`,
		prefix + "/templates/tests/t.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {helm.sh/hook: test}
spec:
  containers: [{name: t, image: registry.invalid/t:1}]
`,
	}
}

func renderKz(t *testing.T, root, path string, kh *render.KustomizeHelm, caps *render.Capabilities) ([]*unstructured.Unstructured, error) {
	t.Helper()
	return renderSource(t.Context(), render.Input{Root: root, Source: app.Source{Path: path}, AppName: "app", Namespace: "dest", KustomizeHelm: kh, Capabilities: caps})
}

func byName(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		m[o.GetKind()+"/"+o.GetName()] = o
	}
	return m
}

// TestKustomizeHelmCharts: a kustomization's helmCharts inflate a chart
// from its chartHome with the hub's Helm code, and the kustomization's
// namespace, labels and patches apply to the chart's objects as they do to
// kustomize's own generator output; the entry's values, release name,
// namespace and capability overrides are used; Helm hooks become Argo CD
// hooks (test hooks dropped); an overlay's base with helmCharts inflates
// too.
func TestKustomizeHelmCharts(t *testing.T) {
	root := t.TempDir()
	files := webChart("base/charts/web")
	files["base/kustomization.yaml"] = `namespace: team
labels: [{pairs: {team: a}}]
helmCharts:
- name: web
  releaseName: shop
  namespace: ignored-by-the-namespace-transformer
  valuesInline: {greeting: hi}
  additionalValuesFiles: [more-values.yaml]
patches:
- target: {kind: ConfigMap, name: shop-web}
  patch: |
    - op: add
      path: /data/patched
      value: "yes"
`
	files["base/more-values.yaml"] = "size: xl\n"
	files["overlay/kustomization.yaml"] = "resources: [../base]\nnamePrefix: prod-\n"
	writeFiles(t, root, files)
	caps, err := render.NewCapabilities("v1.31.2", []string{"v1", "apps/v1", "batch/v1", "example.com/v1"})
	if err != nil {
		t.Fatal(err)
	}
	kh := &render.KustomizeHelm{}

	objs, err := renderKz(t, root, "base", kh, caps)
	if err != nil {
		t.Fatal(err)
	}
	got := byName(objs)
	cm := got["ConfigMap/shop-web"]
	if cm == nil {
		t.Fatalf("no ConfigMap shop-web in %v", keys(got))
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	want := map[string]string{"greeting": "hi", "color": "blue", "size": "xl", "kube": "v1.31.2", "widgets": "yes", "patched": "yes"}
	if d := cmp.Diff(want, data); d != "" {
		t.Errorf("ConfigMap data (-want +got):\n%s", d)
	}
	if cm.GetNamespace() != "team" || cm.GetLabels()["team"] != "a" {
		t.Errorf("ConfigMap namespace %q labels %v: the kustomization's transformers must apply", cm.GetNamespace(), cm.GetLabels())
	}
	job := got["Job/shop-migrate"]
	if job == nil {
		t.Fatalf("no hook Job in %v", keys(got))
	}
	if a := job.GetAnnotations(); a["argocd.argoproj.io/hook"] != "PreSync" || a["argocd.argoproj.io/hook-delete-policy"] != "HookSucceeded" {
		t.Errorf("hook annotations %v: want PreSync, HookSucceeded", a)
	}
	if _, ok := got["Pod/shop-test"]; ok {
		t.Errorf("the chart's test hook was kept")
	}

	over, err := renderKz(t, root, "overlay", kh, caps)
	if err != nil {
		t.Fatal(err)
	}
	if byName(over)["ConfigMap/prod-shop-web"] == nil {
		t.Errorf("overlay: no prod-shop-web in %v", keys(byName(over)))
	}

	// render.Capabilities from the cluster, and the entry's own overrides.
	old, err := render.NewCapabilities("v1.29.0", []string{"v1", "apps/v1", "batch/v1"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err = renderKz(t, root, "base", kh, old)
	if err != nil {
		t.Fatal(err)
	}
	data, _, _ = unstructured.NestedStringMap(byName(objs)["ConfigMap/shop-web"].Object, "data")
	if data["kube"] != "v1.29.0" || data["widgets"] != "" {
		t.Errorf("with v1.29 and no example.com/v1: kube %q widgets %q", data["kube"], data["widgets"])
	}
}

// TestKustomizeHelmValuesMerge: valuesMerge as kustomize has it: override
// (the default: inline wins over the values file), merge (the file wins),
// replace (inline only, over the chart's own values).
func TestKustomizeHelmValuesMerge(t *testing.T) {
	for _, tc := range []struct {
		merge string
		want  map[string]string // greeting, color, size
	}{
		{"", map[string]string{"greeting": "inline", "color": "file", "size": "s"}},
		{"override", map[string]string{"greeting": "inline", "color": "file", "size": "s"}},
		{"merge", map[string]string{"greeting": "file", "color": "file", "size": "s"}},
		{"replace", map[string]string{"greeting": "inline", "color": "blue", "size": "s"}},
	} {
		t.Run("merge="+tc.merge, func(t *testing.T) {
			root := t.TempDir()
			files := webChart("charts/web")
			files["values-file.yaml"] = "greeting: file\ncolor: file\n"
			files["kustomization.yaml"] = fmt.Sprintf("helmCharts:\n- name: web\n  releaseName: r\n  valuesFile: values-file.yaml\n  valuesInline: {greeting: inline}\n  valuesMerge: %q\n", tc.merge)
			writeFiles(t, root, files)
			objs, err := renderKz(t, root, ".", &render.KustomizeHelm{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			data, _, _ := unstructured.NestedStringMap(byName(objs)["ConfigMap/r-web"].Object, "data")
			got := map[string]string{"greeting": data["greeting"], "color": data["color"], "size": data["size"]}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("values (-want +got):\n%s", d)
			}
		})
	}
}

// TestKustomizeHelmChartsFromRepository: an entry naming a repository
// whose chart is not in the chartHome renders the chart folder the hub
// fetched (by repo, name and version); one the hub did not fetch is an
// error naming it.
func TestKustomizeHelmChartsFromRepository(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"kustomization.yaml": "helmCharts:\n- name: web\n  repo: https://charts.example.com\n  version: 1.0.0\n  releaseName: r\n"})
	store := t.TempDir()
	writeFiles(t, store, webChart("sha256-abc/web"))
	kh := &render.KustomizeHelm{Charts: map[string]string{
		render.KustomizeChart{Repo: "https://charts.example.com", Name: "web", Version: "1.0.0"}.Key(): filepath.Join(store, "sha256-abc", "web"),
	}}
	objs, err := renderKz(t, root, ".", kh, nil)
	if err != nil {
		t.Fatal(err)
	}
	if byName(objs)["ConfigMap/r-web"] == nil {
		t.Errorf("no ConfigMap r-web in %v", keys(byName(objs)))
	}
	charts, inflates, err := KustomizeCharts(root, app.Source{Path: "."})
	if err != nil || !inflates || len(charts) != 1 || charts[0] != (render.KustomizeChart{Repo: "https://charts.example.com", Name: "web", Version: "1.0.0"}) {
		t.Errorf("KustomizeCharts: %v, %v, %v", charts, inflates, err)
	}
	if _, err := renderKz(t, root, ".", &render.KustomizeHelm{}, nil); err == nil || !strings.Contains(err.Error(), "was not fetched") {
		t.Errorf("chart not fetched: %v", err)
	}
}

// TestKustomizeHelmRefusals: each a clear error naming the kustomization
// and the entry, nothing rendered: helmCharts when the hub has inflation
// off, a chart neither in its chartHome nor with a repo, a chartHome or
// values file outside the repository, a remote values file, a bad
// valuesMerge, the legacy generator form.
func TestKustomizeHelmRefusals(t *testing.T) {
	chart := webChart("charts/web")
	for _, tc := range []struct {
		name, kustomization string
		kh                  *render.KustomizeHelm
		want                string
	}{
		{"off", "helmCharts: [{name: web}]\n", nil, "kustomization.yaml: helmCharts: Helm chart inflation in kustomize is off on this hub (start it with --kustomize-enable-helm"},
		{"missing chart", "helmCharts: [{name: nope}]\n", &render.KustomizeHelm{}, "helmCharts[0] (nope): no repo to pull chart nope from, and no chart at charts/nope"},
		{"chartHome absolute", "helmGlobals: {chartHome: /etc}\nhelmCharts: [{name: web}]\n", &render.KustomizeHelm{}, `helmGlobals.chartHome "/etc": must be a folder of the repository`},
		{"values outside", "helmCharts: [{name: web, valuesFile: ../../etc/passwd}]\n", &render.KustomizeHelm{}, "helmCharts[0] (web): valuesFile"},
		{"values remote", "helmCharts: [{name: web, additionalValuesFiles: [\"https://example.com/v.yaml\"]}]\n", &render.KustomizeHelm{}, "remote loading is disabled"},
		{"valuesMerge", "helmCharts: [{name: web, valuesMerge: sideways}]\n", &render.KustomizeHelm{}, `valuesMerge "sideways": must be merge, override or replace`},
		{"legacy", "helmChartInflationGenerator: [{chartName: web}]\n", &render.KustomizeHelm{}, "helmChartInflationGenerator: the legacy form is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{"kustomization.yaml": tc.kustomization}
			for k, v := range chart {
				files[k] = v
			}
			writeFiles(t, root, files)
			_, err := renderKz(t, root, ".", tc.kh, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, render.ErrRender) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func keys(m map[string]*unstructured.Unstructured) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
