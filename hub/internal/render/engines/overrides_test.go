package engines

import (
	"context"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// TestHelmCapabilityOverrides renders helm/caps through the render.Renderer with
// the source's helm.kubeVersion and helm.apiVersions (Argo CD's
// overrides) over each cluster's reported capabilities: the version
// replaces the cluster's, the list replaces the cluster's list, and the
// overridden render is cached apart from the plain one.
func TestHelmCapabilityOverrides(t *testing.T) {
	type summary struct {
		PDB         string
		KubeVersion string
		Minor       string
		Widgets     string
	}
	tests := []struct {
		name string
		caps *render.Capabilities
		helm *app.Helm
		want summary
	}{
		{name: "no override: the cluster's", caps: clusterA, helm: &app.Helm{},
			want: summary{"policy/v1", "v1.31.2", "31", "true"}},
		{name: "kubeVersion replaces the cluster's version, read as helm --kube-version reads it", caps: clusterA, helm: &app.Helm{KubeVersion: "1.24"},
			want: summary{"policy/v1", "v1.24", "24", "true"}},
		{name: "apiVersions replace the cluster's list", caps: clusterA, helm: &app.Helm{APIVersions: []string{"policy/v1beta1/PodDisruptionBudget"}},
			want: summary{"policy/v1beta1", "v1.31.2", "31", "false"}},
		{name: "apiVersions on an old cluster", caps: clusterB, helm: &app.Helm{APIVersions: []string{"policy/v1/PodDisruptionBudget", "example.com/v1"}},
			want: summary{"policy/v1", "v1.20.4", "20", "true"}},
		{name: "both, no cluster known", caps: nil, helm: &app.Helm{KubeVersion: "v1.29.3", APIVersions: []string{"example.com/v1"}},
			want: summary{"policy/v1beta1", "v1.29.3", "29", "true"}},
	}
	r := newRenderer(render.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "helm/caps", Helm: tt.helm}, Namespace: "shop", AppName: "web", Capabilities: tt.caps}
			objs, err := r.Render(context.Background(), render.CacheKey("tree", in), in)
			if err != nil {
				t.Fatal(err)
			}
			var got summary
			for _, o := range objs {
				switch o.GetKind() {
				case "PodDisruptionBudget":
					got.PDB = o.GetAPIVersion()
				case "ConfigMap":
					d := o.Object["data"].(map[string]any)
					got.KubeVersion, got.Minor, got.Widgets = d["kubeVersion"].(string), d["minor"].(string), d["widgets"].(string)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("render differs (-want +got):\n%s", diff)
			}
		})
	}
	if got, want := r.Stats().Renders, uint64(len(tests)); got != want {
		t.Errorf("renders = %d, want %d (each override its own cache entry)", got, want)
	}
}

// TestHelmKubeVersionOverrideChecked checks the chart's kubeVersion
// constraint against helm.kubeVersion when set, and says so.
func TestHelmKubeVersionOverrideChecked(t *testing.T) {
	tests := []struct {
		name    string
		helm    *app.Helm
		wantErr string
	}{
		{name: "cluster new enough", helm: &app.Helm{}},
		{name: "override too old", helm: &app.Helm{KubeVersion: "1.28"},
			wantErr: "chart requires kubeVersion: >=1.29.0-0 which is incompatible with Kubernetes v1.28 (the source's helm.kubeVersion)"},
		{name: "not a version", helm: &app.Helm{KubeVersion: "latest"}, wantErr: `helm.kubeVersion "latest"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "helm/newkube", Helm: tt.helm}, Namespace: "shop", AppName: "web", Capabilities: clusterA}
			_, err := renderSource(context.Background(), in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestCacheKeyCapabilityOverrides: the overrides are part of the key.
func TestCacheKeyCapabilityOverrides(t *testing.T) {
	in := func(h *app.Helm) render.Input {
		return render.Input{Root: "/x", Source: app.Source{Path: "helm/caps", Helm: h}, Namespace: "shop", AppName: "web", Capabilities: clusterA}
	}
	tests := []struct {
		name string
		a, b render.Input
		same bool
	}{
		{name: "none", a: in(&app.Helm{}), b: in(&app.Helm{}), same: true},
		{name: "kubeVersion", a: in(&app.Helm{}), b: in(&app.Helm{KubeVersion: "1.24"})},
		{name: "two kubeVersions", a: in(&app.Helm{KubeVersion: "1.25"}), b: in(&app.Helm{KubeVersion: "1.24"})},
		{name: "apiVersions", a: in(&app.Helm{}), b: in(&app.Helm{APIVersions: []string{"x.io/v1"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render.CacheKey("tree", tt.a) == render.CacheKey("tree", tt.b); got != tt.same {
				t.Errorf("same key = %v, want %v", got, tt.same)
			}
		})
	}
}
