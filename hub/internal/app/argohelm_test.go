package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestArgoHelmCapabilityOverrides: an Argo CD Application's
// helm.kubeVersion and helm.apiVersions are carried into the source (no
// warning); a kubeVersion that is not a version is refused.
func TestArgoHelmCapabilityOverrides(t *testing.T) {
	tests := []struct {
		name        string
		helm        string
		wantVersion string
		wantAPIs    []string
		wantErr     string
	}{
		{name: "none", helm: `{releaseName: r}`},
		{name: "kubeVersion", helm: `{kubeVersion: "1.24"}`, wantVersion: "1.24"},
		{name: "apiVersions", helm: `{apiVersions: [policy/v1beta1, example.com/v1/Widget]}`, wantAPIs: []string{"policy/v1beta1", "example.com/v1/Widget"}},
		{name: "both", helm: `{kubeVersion: v1.30.2, apiVersions: [v1]}`, wantVersion: "v1.30.2", wantAPIs: []string{"v1"}},
		{name: "templated kubeVersion (checked when rendered)", helm: `{kubeVersion: "1.{{ .cluster.labels.minor }}"}`, wantVersion: "1.{{ .cluster.labels.minor }}"},
		{name: "not a version", helm: `{kubeVersion: latest}`, wantErr: `helm.kubeVersion "latest": not a Kubernetes version`},
		{name: "empty API version", helm: `{apiVersions: [v1, " "]}`, wantErr: "helm.apiVersions[1] is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defs, err := Decode("apps.yaml", []byte(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p, helm: `+tt.helm+`}
  destination: {namespace: team-a, name: c}
`))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want ErrInvalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(defs.Apps) != 1 {
				t.Fatalf("%d apps, want 1", len(defs.Apps))
			}
			for _, w := range defs.Warnings {
				if strings.Contains(w, "kubeVersion") || strings.Contains(w, "apiVersions") {
					t.Errorf("warning %q", w)
				}
			}
			h := defs.Apps[0].Spec.Source.Helm
			if diff := cmp.Diff([]any{tt.wantVersion, tt.wantAPIs}, []any{h.KubeVersion, h.APIVersions}); diff != "" {
				t.Errorf("overrides (-want +got):\n%s", diff)
			}
		})
	}
}
