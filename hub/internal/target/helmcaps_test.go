package target

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// TestEffectiveHelmCapabilityOverrides: a cluster override's
// helm.kubeVersion wins and its non-empty helm.apiVersions replace the
// base list; an override without them keeps the base's.
func TestEffectiveHelmCapabilityOverrides(t *testing.T) {
	t.Parallel()
	base := app.Helm{KubeVersion: "1.29", APIVersions: []string{"v1", "example.com/v1"}}
	tests := []struct {
		name     string
		override *app.Helm
		want     app.Helm
	}{
		{name: "none", override: &app.Helm{ReleaseName: "r"}, want: app.Helm{ReleaseName: "r", KubeVersion: "1.29", APIVersions: []string{"v1", "example.com/v1"}}},
		{name: "kubeVersion", override: &app.Helm{KubeVersion: "1.30"}, want: app.Helm{KubeVersion: "1.30", APIVersions: []string{"v1", "example.com/v1"}}},
		{name: "apiVersions replace", override: &app.Helm{APIVersions: []string{"policy/v1"}}, want: app.Helm{KubeVersion: "1.29", APIVersions: []string{"policy/v1"}}},
		{name: "templated kubeVersion", override: &app.Helm{KubeVersion: "1.{{ .cluster.labels.minor }}"}, want: app.Helm{KubeVersion: "1.31", APIVersions: []string{"v1", "example.com/v1"}}},
	}
	cluster := Cluster{Name: "c1", Labels: map[string]string{"minor": "31"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := base
			h.APIVersions = append([]string(nil), base.APIVersions...)
			a := &app.Application{Name: "a", Spec: app.Spec{
				Source:           app.Source{RepoURL: "r", Path: "chart", Helm: &h},
				Destination:      app.Destination{Clusters: []string{"c1"}},
				ClusterOverrides: []app.ClusterOverride{{Clusters: []string{"c1"}, Helm: tt.override}},
			}}
			got, err := Effective(a, cluster)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tt.want, got.Helm); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
