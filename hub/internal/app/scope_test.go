package app

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeScope(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want *Scope
		err  bool
	}{
		{"flotilla none", `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: team-a, clusters: [c]}
`, nil, false},
		{"flotilla scope", `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: team-a, clusters: [c]}
  scope: {namespaces: [monitoring, "team-a-*"], clusterScoped: true}
`, &Scope{Namespaces: []string{"monitoring", "team-a-*"}, ClusterScoped: true}, false},
		{"flotilla bad glob", `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: team-a, clusters: [c]}
  scope: {namespaces: ["["]}
`, nil, true},
		{"argo annotations", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: a
  annotations:
    flotilla.dev/scope-namespaces: "monitoring, team-a-*"
    flotilla.dev/scope-cluster-scoped: "true"
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: team-a, name: c}
`, &Scope{Namespaces: []string{"monitoring", "team-a-*"}, ClusterScoped: true}, false},
		{"argo without annotations", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: team-a, name: c}
`, nil, false},
		{"argo bad boolean", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: a
  annotations: {flotilla.dev/scope-cluster-scoped: "yes"}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: team-a, name: c}
`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defs, err := Decode("apps.yaml", []byte(tc.doc))
			if tc.err {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Decode error %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(defs.Apps) != 1 {
				t.Fatalf("%d apps", len(defs.Apps))
			}
			if d := cmp.Diff(tc.want, defs.Apps[0].Spec.Scope); d != "" {
				t.Errorf("scope (-want +got):\n%s", d)
			}
		})
	}
}
