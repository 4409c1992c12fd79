package engines

import (
	"context"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// TestRenderHelmOrigins renders testdata/repo/helm/full (subcharts enabled
// and disabled by condition, tag and alias, CRDs in the chart and in a
// subchart, NOTES.txt, partials, hooks and test hooks) and checks which
// objects come out, in which order, named by which chart file, and how
// Helm hooks are mapped to Argo CD hooks (phase, wave, delete policy).
func TestRenderHelmOrigins(t *testing.T) {
	crds := []string{
		"helm/full/crds/widgets.yaml CustomResourceDefinition widgets.example.com",
		"helm/full/crds/widgets.yaml CustomResourceDefinition gadgets.example.com",
		"helm/full/charts/sub/crds/things.json CustomResourceDefinition things.example.com",
	}
	manifests := []string{
		"helm/full/templates/info.yaml Namespace prod-extra",
		"helm/full/templates/info.yaml ConfigMap rel-full-info",
		"helm/full/charts/sub/templates/service.yaml Service rel-sub",
		"helm/full/templates/deployment.yaml Deployment rel-full",
	}
	// Test hooks (templates/tests/test.yaml) and the pre-delete,
	// post-rollback hook rel-cleanup are dropped; Argo CD's own annotation
	// wins over helm.sh/hook (rel-argo-wins); a generateName hook is kept.
	hooks := []string{
		"helm/full/templates/hooks.yaml ConfigMap rel-seed hook=PostSync wave=-1 delete=",
		"helm/full/templates/hooks.yaml Pod rel-argo-wins hook=Sync wave= delete=",
		"helm/full/templates/hooks.yaml Job rel-migrate hook=PreSync wave=5 delete=BeforeHookCreation,HookSucceeded",
		"helm/full/templates/hooks.yaml Job rel-smoke- hook=PostSync wave= delete=HookFailed",
	}
	tests := []struct {
		name string
		helm *app.Helm
		want []string
	}{
		{name: "crds included", helm: &app.Helm{}, want: concat(crds, manifests, hooks)},
		{name: "skipCrds", helm: &app.Helm{SkipCRDs: true}, want: concat(manifests, hooks)},
		{name: "no helm settings", helm: nil, want: concat(crds, manifests, hooks)},
	}
	root, err := render.OpenRoot(repoRootForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := render.Input{Root: root.Path, Source: app.Source{Path: "helm/full", Helm: tt.helm}, Namespace: "prod", AppName: "rel"}
			dir, err := root.Dir(in.Source.Path)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := renderHelm(context.Background(), root, dir, in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				line := fmt.Sprintf("%s %s %s", o.Origin, o.Obj.GetKind(), manifest.KeyOf(o.Obj).Name)
				if ann := o.Obj.GetAnnotations(); ann[manifest.HelmHookAnnotation] != "" {
					line += fmt.Sprintf(" hook=%s wave=%s delete=%s", ann[manifest.HookAnnotation], ann[manifest.ArgoSyncWaveAnnotation], ann[manifest.HookDeletePolicyAnnotation])
				}
				got = append(got, line)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("objects differ (-want +got):\n%s", diff)
			}
		})
	}
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func TestCheckDependencies(t *testing.T) {
	sub := func(name string) *chart.Chart {
		return &chart.Chart{Metadata: &chart.Metadata{APIVersion: "v2", Name: name, Version: "0.1.0"}}
	}
	tests := []struct {
		name     string
		listed   []string
		vendored []string
		want     string
	}{
		{name: "none", want: "<nil>"},
		{name: "all vendored", listed: []string{"db", "cache"}, vendored: []string{"cache", "db"}, want: "<nil>"},
		{name: "extra vendored chart", vendored: []string{"db"}, want: "<nil>"},
		{name: "one missing", listed: []string{"db", "cache"}, vendored: []string{"db"},
			want: "found in Chart.yaml, but missing in charts/ directory: cache"},
		{name: "all missing in Chart.yaml order", listed: []string{"db", "cache"},
			want: "found in Chart.yaml, but missing in charts/ directory: db, cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sub("parent")
			for _, n := range tt.listed {
				c.Metadata.Dependencies = append(c.Metadata.Dependencies, &chart.Dependency{Name: n, Version: "0.1.0"})
			}
			for _, n := range tt.vendored {
				c.AddDependency(sub(n))
			}
			if got := fmt.Sprint(checkDependencies(c)); got != tt.want {
				t.Errorf("checkDependencies = %s, want %s", got, tt.want)
			}
		})
	}
}
