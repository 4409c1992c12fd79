package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDecodeRollout(t *testing.T) {
	max := 0.05
	canary := RolloutStep{Name: "canary", ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"wave": "canary"}}, Soak: "5m",
		Gate: &RolloutGate{URL: "http://prometheus:9090/api/v1/query?query=errors", Max: &max}}
	rest := RolloutStep{Percent: 50, Approval: true, MaxUnavailable: &intstr.IntOrString{Type: intstr.String, StrVal: "25%"}}
	for _, tc := range []struct {
		name    string
		doc     string
		want    *Rollout
		project *Rollout
		err     string
	}{
		{name: "flotilla spec.rollout", doc: `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: a, clusterSelector: {matchLabels: {env: prod}}}
  rollout:
    autoRollback: true
    stepDeadline: 15m
    steps:
    - name: canary
      clusterSelector: {matchLabels: {wave: canary}}
      soak: 5m
      gate: {url: "http://prometheus:9090/api/v1/query?query=errors", max: 0.05}
    - {percent: 50, approval: true, maxUnavailable: "25%"}
`, want: &Rollout{AutoRollback: true, StepDeadline: "15m", Steps: []RolloutStep{canary, rest}}},
		{name: "argo annotation", doc: `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: a
  annotations:
    flotilla.dev/rollout: |
      autoRollback: true
      stepDeadline: 15m
      steps:
      - name: canary
        clusterSelector: {matchLabels: {wave: canary}}
        soak: 5m
        gate: {url: "http://prometheus:9090/api/v1/query?query=errors", max: 0.05}
      - {percent: 50, approval: true, maxUnavailable: "25%"}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: a, name: c}
`, want: &Rollout{AutoRollback: true, StepDeadline: "15m", Steps: []RolloutStep{canary, rest}}},
		{name: "project default", doc: `apiVersion: flotilla.dev/v1alpha1
kind: Project
metadata: {name: p}
spec:
  sourceRepos: ["*"]
  rollout:
    steps: [{percent: 10}, {percent: 100}]
`, project: &Rollout{Steps: []RolloutStep{{Percent: 10}, {Percent: 100}}}},
		{name: "no steps", doc: `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: a, clusters: [c]}
  rollout: {steps: []}
`, err: "spec.rollout.steps: a rollout needs at least one step"},
		{name: "selector and percent", doc: `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: a, clusters: [c]}
  rollout: {steps: [{percent: 10, clusterSelector: {matchLabels: {a: b}}}]}
`, err: "spec.rollout.steps[0]: clusterSelector and percent"},
		{name: "gate without bound", doc: `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: a, clusters: [c]}
  rollout: {steps: [{gate: {url: "http://p/api/v1/query?query=x"}}]}
`, err: "spec.rollout.steps[0].gate: neither max nor min"},
		{name: "bad maxUnavailable", doc: `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: a, clusters: [c]}
  rollout: {maxUnavailable: "half", steps: [{percent: 10}]}
`, err: `spec.rollout.maxUnavailable: "half"`},
		{name: "argo annotation with an unknown field", doc: `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: a
  annotations: {flotilla.dev/rollout: "stepz: []"}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: a, name: c}
`, err: "metadata.annotations[flotilla.dev/rollout]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defs, err := Decode("f.yaml", []byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.project != nil {
				if d := cmp.Diff(tc.project, defs.Projects[0].Spec.Rollout); d != "" {
					t.Errorf("project rollout (-want +got):\n%s", d)
				}
				return
			}
			if d := cmp.Diff(tc.want, defs.Apps[0].Spec.Rollout); d != "" {
				t.Errorf("rollout (-want +got):\n%s", d)
			}
		})
	}
}
