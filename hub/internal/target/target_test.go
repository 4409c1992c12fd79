package target

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

var (
	prodEU  = Cluster{Name: "prod-eu-1", Labels: map[string]string{"env": "prod", "region": "eu", "replicas": "3"}}
	prodUS  = Cluster{Name: "prod-us-1", Labels: map[string]string{"env": "prod", "region": "us"}}
	staging = Cluster{Name: "staging-1", Labels: map[string]string{"env": "staging", "region": "eu"}}
	bare    = Cluster{Name: "bare"}
)

func TestTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dest app.Destination
		want []string
	}{
		{"by name", app.Destination{Clusters: []string{"staging-1", "unknown"}}, []string{"staging-1"}},
		{"by selector", app.Destination{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}, []string{"prod-eu-1", "prod-us-1"}},
		{"name or selector", app.Destination{Clusters: []string{"bare"}, ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "us"}}}, []string{"prod-us-1", "bare"}},
		{"expression", app.Destination{ClusterSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"prod"}}}}}, []string{"staging-1", "bare"}},
		{"empty selector matches all", app.Destination{ClusterSelector: &metav1.LabelSelector{}}, []string{"prod-eu-1", "prod-us-1", "staging-1", "bare"}},
		{"nothing", app.Destination{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app.Application{Name: "a", Spec: app.Spec{Destination: tt.dest}}
			var got []string
			for _, c := range Clusters(a, []Cluster{prodEU, prodUS, staging, bare}) {
				got = append(got, c.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func guestbook() *app.Application {
	return &app.Application{
		Name: "guestbook",
		Spec: app.Spec{
			Source: app.Source{
				RepoURL: "https://git.example.com/c.git", TargetRevision: "main",
				Path: "apps/guestbook/{{ .cluster.labels.env }}",
				Helm: &app.Helm{
					ValueFiles:  []string{"values-{{ .cluster.labels.region }}.yaml"},
					Values:      "replicas: 1\nimage: {tag: v1, pullPolicy: IfNotPresent}\ncluster: '{{ .cluster.name }}'\n",
					ReleaseName: "gb-{{ .cluster.name }}",
					Parameters:  []app.HelmParameter{{Name: "region", Value: "{{ .cluster.labels.region }}"}},
				},
			},
			Destination: app.Destination{ClusterSelector: &metav1.LabelSelector{}},
			ClusterOverrides: []app.ClusterOverride{
				{
					Clusters: []string{"prod-eu-1"},
					Helm: &app.Helm{
						ValueFiles: []string{"values-big.yaml"},
						Values:     "replicas: {{ .cluster.labels.replicas }}\nimage: {tag: v2}\n",
					},
				},
				{ // also matches prod-eu-1, but the first match wins
					ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
					Path:            "apps/guestbook/prod-{{ .cluster.labels.region }}",
					TargetRevision:  "stable",
				},
			},
		},
	}
}

func TestEffective(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cluster Cluster
		want    app.Source
	}{
		{prodEU, app.Source{
			RepoURL: "https://git.example.com/c.git", TargetRevision: "main", Path: "apps/guestbook/prod",
			Helm: &app.Helm{
				ValueFiles:  []string{"values-eu.yaml", "values-big.yaml"},
				Values:      "cluster: prod-eu-1\nimage:\n  pullPolicy: IfNotPresent\n  tag: v2\nreplicas: 3\n",
				ReleaseName: "gb-prod-eu-1",
				Parameters:  []app.HelmParameter{{Name: "region", Value: "eu"}},
			},
		}},
		{prodUS, app.Source{
			RepoURL: "https://git.example.com/c.git", TargetRevision: "stable", Path: "apps/guestbook/prod-us",
			Helm: &app.Helm{
				ValueFiles:  []string{"values-us.yaml"},
				Values:      "replicas: 1\nimage: {tag: v1, pullPolicy: IfNotPresent}\ncluster: 'prod-us-1'\n",
				ReleaseName: "gb-prod-us-1",
				Parameters:  []app.HelmParameter{{Name: "region", Value: "us"}},
			},
		}},
		{staging, app.Source{
			RepoURL: "https://git.example.com/c.git", TargetRevision: "main", Path: "apps/guestbook/staging",
			Helm: &app.Helm{
				ValueFiles:  []string{"values-eu.yaml"},
				Values:      "replicas: 1\nimage: {tag: v1, pullPolicy: IfNotPresent}\ncluster: 'staging-1'\n",
				ReleaseName: "gb-staging-1",
				Parameters:  []app.HelmParameter{{Name: "region", Value: "eu"}},
			},
		}},
	}
	a := guestbook()
	before := guestbook()
	for _, tt := range tests {
		t.Run(tt.cluster.Name, func(t *testing.T) {
			got, err := Effective(a, tt.cluster)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff(before, a); diff != "" {
		t.Errorf("Effective modified the application (-before +after):\n%s", diff)
	}
}

func TestEffectiveKustomize(t *testing.T) {
	t.Parallel()
	a := &app.Application{Name: "k", Spec: app.Spec{
		Source: app.Source{RepoURL: "r", Path: "overlays/{{ .cluster.labels.env }}", Kustomize: &app.Kustomize{
			NamePrefix: "p-", Images: []string{"web=web:v1"}, CommonLabels: map[string]string{"cluster": "{{ .cluster.name }}", "team": "a"},
		}},
		Destination: app.Destination{Clusters: []string{"staging-1"}},
		ClusterOverrides: []app.ClusterOverride{{Clusters: []string{"staging-1"}, Kustomize: &app.Kustomize{
			NameSuffix: "-{{ .cluster.labels.region }}", Images: []string{"web=web:v2"}, CommonLabels: map[string]string{"team": "b"},
			Replicas: []app.KustomizeReplica{{Name: "web", Count: 2}},
		}}},
	}}
	got, err := Effective(a, staging)
	if err != nil {
		t.Fatal(err)
	}
	want := app.Source{RepoURL: "r", Path: "overlays/staging", Kustomize: &app.Kustomize{
		NamePrefix: "p-", NameSuffix: "-eu", Images: []string{"web=web:v1", "web=web:v2"},
		CommonLabels: map[string]string{"cluster": "staging-1", "team": "b"},
		Replicas:     []app.KustomizeReplica{{Name: "web", Count: 2}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEffectiveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		source  app.Source
		cluster Cluster
		want    string
	}{
		{"missing label", app.Source{Path: "apps/{{ .cluster.labels.tier }}"}, prodEU,
			`app a: cluster prod-eu-1: spec.source.path: template: :1:16: executing "" at <.cluster.labels.tier>: map has no entry for key "tier"`},
		{"no labels at all", app.Source{Helm: &app.Helm{Values: "env: {{ .cluster.labels.env }}"}}, bare,
			`app a: cluster bare: spec.source.helm.values: template: :1:16: executing "" at <.cluster.labels.env>: map has no entry for key "env"`},
		{"unknown field", app.Source{Path: "{{ .cluster.region }}"}, prodEU,
			`app a: cluster prod-eu-1: spec.source.path: template: :1:11: executing "" at <.cluster.region>: map has no entry for key "region"`},
		{"parse error", app.Source{Path: "{{ .cluster.name"}, prodEU,
			`app a: cluster prod-eu-1: spec.source.path: template: :1: unclosed action`},
		{"path leaves repo", app.Source{Path: "../{{ .cluster.name }}"}, prodEU,
			`app a: cluster prod-eu-1: path: "../prod-eu-1" leaves the repository`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app.Application{Name: "a", Spec: app.Spec{Source: tt.source}}
			_, err := Effective(a, tt.cluster)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
			if tt.name != "path leaves repo" && !errors.Is(err, ErrTemplate) {
				t.Errorf("%v does not wrap ErrTemplate", err)
			}
		})
	}
}

func TestMergeValues(t *testing.T) {
	t.Parallel()
	base := map[string]any{"a": map[string]any{"b": 1, "c": 2}, "list": []any{1, 2}, "s": "x"}
	over := map[string]any{"a": map[string]any{"c": 3, "d": 4}, "list": []any{9}, "s": map[string]any{"now": "map"}}
	want := map[string]any{"a": map[string]any{"b": 1, "c": 3, "d": 4}, "list": []any{9}, "s": map[string]any{"now": "map"}}
	if diff := cmp.Diff(want, MergeValues(base, over)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
