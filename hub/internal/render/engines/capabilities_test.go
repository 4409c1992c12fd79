package engines

import (
	"context"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// clusterA serves policy/v1 and a widgets CRD; clusterB is older and has
// neither.
var (
	clusterA = &render.Capabilities{KubeVersion: "v1.31.2", APIVersions: []string{"v1", "v1/ConfigMap", "policy/v1", "policy/v1/PodDisruptionBudget", "example.com/v1", "example.com/v1/Widget"}}
	clusterB = &render.Capabilities{KubeVersion: "v1.20.4", APIVersions: []string{"v1", "v1/ConfigMap", "policy/v1beta1", "policy/v1beta1/PodDisruptionBudget"}}
)

// TestHelmRendersWithClusterCapabilities renders a chart that branches on
// .Capabilities for two clusters and checks what each one gets.
func TestHelmRendersWithClusterCapabilities(t *testing.T) {
	type summary struct {
		PDB         string
		KubeVersion string
		Minor       string
		Widgets     string
	}
	tests := []struct {
		name string
		caps *render.Capabilities
		want summary
	}{
		{name: "new cluster with the CRD", caps: clusterA, want: summary{"policy/v1", "v1.31.2", "31", "true"}},
		{name: "old cluster without it", caps: clusterB, want: summary{"policy/v1beta1", "v1.20.4", "20", "false"}},
		{name: "pre-release version kept as served", caps: &render.Capabilities{KubeVersion: "v1.30.0-rc.1+abc", APIVersions: []string{"policy/v1/PodDisruptionBudget"}},
			want: summary{"policy/v1", "v1.30.0-rc.1+abc", "30", "false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "helm/caps"}, Namespace: "shop", AppName: "web", Capabilities: tt.caps}
			objs, err := renderSource(context.Background(), in)
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
}

// TestHelmKubeVersionAgainstCluster checks a chart's kubeVersion
// constraint against the cluster's version, not Helm's default.
func TestHelmKubeVersionAgainstCluster(t *testing.T) {
	tests := []struct {
		name    string
		caps    *render.Capabilities
		wantErr string
	}{
		{name: "new enough", caps: &render.Capabilities{KubeVersion: "v1.31.0"}},
		{name: "pre-release of a new enough version", caps: &render.Capabilities{KubeVersion: "v1.29.0-alpha.1"}},
		{name: "too old", caps: &render.Capabilities{KubeVersion: "v1.28.9"}, wantErr: "chart requires kubeVersion: >=1.29.0-0 which is incompatible with Kubernetes v1.28.9 (the version of the cluster's API server)"},
		{name: "cluster not known", caps: nil, wantErr: "incompatible with Kubernetes v1.20.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "helm/newkube"}, Namespace: "shop", AppName: "web", Capabilities: tt.caps}
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

// TestCacheKeyCapabilities checks that the render cache tells capability
// sets apart, and only them: the order of API versions does not matter.
func TestCacheKeyCapabilities(t *testing.T) {
	base := render.Input{Root: "/x", Source: app.Source{Path: "helm/caps"}, Namespace: "shop", AppName: "web"}
	with := func(c *render.Capabilities) render.Input { in := base; in.Capabilities = c; return in }
	reordered := &render.Capabilities{KubeVersion: clusterA.KubeVersion, APIVersions: append([]string{"example.com/v1/Widget"}, clusterA.APIVersions...)}
	tests := []struct {
		name string
		a, b render.Input
		same bool
	}{
		{name: "same set", a: with(clusterA), b: with(&render.Capabilities{KubeVersion: clusterA.KubeVersion, APIVersions: clusterA.APIVersions}), same: true},
		{name: "order and duplicates do not matter", a: with(clusterA), b: with(reordered), same: true},
		{name: "different API versions", a: with(clusterA), b: with(clusterB)},
		{name: "different Kubernetes version only", a: with(clusterA), b: with(&render.Capabilities{KubeVersion: "v1.31.3", APIVersions: clusterA.APIVersions})},
		{name: "a set and none", a: with(clusterA), b: base},
		{name: "a CRD more", a: with(clusterA), b: with(&render.Capabilities{KubeVersion: clusterA.KubeVersion, APIVersions: append([]string{"x.io/v1"}, clusterA.APIVersions...)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render.CacheKey("tree", tt.a) == render.CacheKey("tree", tt.b); got != tt.same {
				t.Errorf("same key = %v, want %v", got, tt.same)
			}
		})
	}
}

// TestCacheRendersOncePerCapabilitySet renders one chart for many
// clusters with three distinct capability sets: three renders.
func TestCacheRendersOncePerCapabilitySet(t *testing.T) {
	r := newRenderer(render.Options{})
	sets := []*render.Capabilities{clusterA, clusterB, {KubeVersion: "v1.29.1", APIVersions: clusterA.APIVersions}}
	pdb := map[string]bool{}
	for i := range 300 {
		in := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "helm/caps"}, Namespace: "shop", AppName: "web", Capabilities: sets[i%len(sets)]}
		objs, err := r.Render(context.Background(), render.CacheKey("tree", in), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() == "PodDisruptionBudget" {
				pdb[o.GetAPIVersion()] = true
			}
		}
	}
	if got := r.Stats().Renders; got != 3 {
		t.Errorf("renders = %d, want 3", got)
	}
	if diff := cmp.Diff(map[string]bool{"policy/v1": true, "policy/v1beta1": true}, pdb); diff != "" {
		t.Errorf("PodDisruptionBudget versions (-want +got):\n%s", diff)
	}
}

// TestNewCapabilities checks the canonical form and the version check.
func TestNewCapabilities(t *testing.T) {
	c, err := render.NewCapabilities("v1.31.0", []string{"v1", "apps/v1", "v1", "apps/v1/Deployment"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"apps/v1", "apps/v1/Deployment", "v1"}, c.APIVersions); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if _, err := render.NewCapabilities("not-a-version", nil); err == nil {
		t.Error("a kube version that is not a version was accepted")
	}
}
