package engines

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"sigs.k8s.io/yaml"
)

// TestTemplateChartMatchesHelmInstall renders charts with templateChart and
// with helm's own client-only install (what `helm template` runs, and what
// the hub used before) and requires the same manifest text, the same hooks
// and the same errors. It guards the reimplementation across helm upgrades;
// pkg/action is linked into this test only, never into the hub.
func TestTemplateChartMatchesHelmInstall(t *testing.T) {
	tests := []struct {
		name    string
		chart   string
		vals    string
		opts    templateOptions
		wantErr string // a part of the error; "" for success
	}{
		{name: "mychart", chart: "mychart", opts: templateOptions{ReleaseName: "web", Namespace: "shop", IncludeCRDs: true}},
		{name: "mychart-skip-crds", chart: "mychart", opts: templateOptions{ReleaseName: "web", Namespace: "shop"}},
		{name: "full", chart: "full", opts: templateOptions{ReleaseName: "rel", Namespace: "prod", IncludeCRDs: true}},
		{name: "full-skip-crds", chart: "full", opts: templateOptions{ReleaseName: "rel", Namespace: "prod"}},
		{name: "full-dependencies-toggled", chart: "full", vals: "sub: {enabled: false}\nsecond: {enabled: true, port: 9090}\ntags: {optional: true}\n",
			opts: templateOptions{ReleaseName: "rel", Namespace: "prod", IncludeCRDs: true}},
		{name: "full-schema-rejects", chart: "full", vals: "replicas: 0\n", opts: templateOptions{ReleaseName: "rel", Namespace: "prod"},
			wantErr: "values don't meet the specifications of the schema(s) in the following chart(s):\nfull:\n- at '/replicas': minimum: got 0, want 1"},
		{name: "full-subchart-schema-rejects", chart: "full", vals: "sub: {port: eighty}\n", opts: templateOptions{ReleaseName: "rel", Namespace: "prod"},
			wantErr: "sub:\n- at '/port': got string, want integer"},
		{name: "bad-release-name", chart: "mychart", opts: templateOptions{ReleaseName: "Not_Valid", Namespace: "shop"},
			wantErr: `release name "Not_Valid": invalid release name`},
		{name: "kube-version-incompatible", chart: "oldkube", opts: templateOptions{ReleaseName: "web", Namespace: "shop"},
			wantErr: "chart requires kubeVersion: <1.16.0 which is incompatible with Kubernetes v1.20.0"},
		{name: "template-error", chart: "badtemplate", opts: templateOptions{ReleaseName: "web", Namespace: "shop"},
			wantErr: "execution error at (badtemplate/templates/cm.yaml:4:26): name is required"},
		{name: "template-ok", chart: "badtemplate", vals: "name: given\n", opts: templateOptions{ReleaseName: "web", Namespace: "shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "repo", "helm", tt.chart)
			wantManifest, wantHooks, wantErr := helmInstallClientOnly(t, loadChart(t, dir), parseVals(t, tt.vals), tt.opts)
			got, err := templateChart(context.Background(), loadChart(t, dir), parseVals(t, tt.vals), tt.opts)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("error\n%v\nwant (helm)\n%v", err, wantErr)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Manifests) == 0 {
				t.Fatal("no manifests rendered")
			}
			if diff := cmp.Diff(wantManifest, manifestText(got)); diff != "" {
				t.Errorf("manifest differs from helm's (-helm +ours):\n%s", diff)
			}
			if diff := cmp.Diff(hookSummaries(wantHooks), hookSummaries(got.Hooks)); diff != "" {
				t.Errorf("hooks differ from helm's (-helm +ours):\n%s", diff)
			}
		})
	}
}

// helmInstallClientOnly runs helm's action.Install as `helm template`
// does, with the settings the hub used before templateChart.
func helmInstallClientOnly(t *testing.T, chrt *chart.Chart, vals map[string]any, opts templateOptions) (string, []*release.Hook, error) {
	t.Helper()
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = opts.IncludeCRDs
	install.ReleaseName = opts.ReleaseName
	install.Namespace = opts.Namespace
	rel, err := install.RunWithContext(context.Background(), chrt, vals)
	if err != nil {
		return "", nil, err
	}
	return rel.Manifest, rel.Hooks, nil
}

// manifestText prints c as helm's renderResources builds a release manifest.
func manifestText(c *chartOutput) string {
	var b strings.Builder
	for _, crd := range c.CRDs {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", crd.Filename, crd.File.Data)
	}
	for _, m := range c.Manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	return b.String()
}

type hookSummary struct {
	Path, Name, Kind, Manifest string
	Events                     []release.HookEvent
	Weight                     int
	DeletePolicies             []release.HookDeletePolicy
}

func hookSummaries(hs []*release.Hook) []hookSummary {
	out := make([]hookSummary, 0, len(hs))
	for _, h := range hs {
		out = append(out, hookSummary{Path: h.Path, Name: h.Name, Kind: h.Kind, Manifest: h.Manifest,
			Events: h.Events, Weight: h.Weight, DeletePolicies: h.DeletePolicies})
	}
	return out
}

func loadChart(t *testing.T, dir string) *chart.Chart {
	t.Helper()
	c, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func parseVals(t *testing.T, s string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if s == "" {
		return vals
	}
	if err := yaml.Unmarshal([]byte(s), &vals); err != nil {
		t.Fatal(err)
	}
	return vals
}
