//go:build !unit

package engine

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func hookObj(kind, name, generateName string, ann map[string]string) *unstructured.Unstructured {
	md := map[string]any{}
	if name != "" {
		md["name"] = name
	}
	if generateName != "" {
		md["generateName"] = generateName
	}
	o := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": kind, "metadata": md})
	o.SetAnnotations(ann)
	return o
}

// TestHookPlan: hooks are split from the objects kept in sync, planned one
// per phase in run order (phase, then wave, then key), and the Sync phase
// merges the waves of objects and Sync hooks.
func TestHookPlan(t *testing.T) {
	objs := []*unstructured.Unstructured{
		hookObj("ConfigMap", "plain", "", nil),
		hookObj("ConfigMap", "skipped", "", map[string]string{manifest.HookAnnotation: "Skip"}),
		hookObj("Pod", "", "test-", map[string]string{manifest.HelmHookAnnotation: "test"}),
		hookObj("Pod", "", "migrate-", map[string]string{manifest.HookAnnotation: "PreSync", manifest.SyncWaveAnnotation: "2"}),
		hookObj("Pod", "", "seed-", map[string]string{manifest.HelmHookAnnotation: "pre-install", manifest.HelmHookWeightAnnotation: "-1"}),
		hookObj("Pod", "smoke", "", map[string]string{manifest.HookAnnotation: "PostSync,SyncFail"}),
		hookObj("Pod", "during", "", map[string]string{manifest.HookAnnotation: "Sync", manifest.ArgoSyncWaveAnnotation: "5"}),
		hookObj("ConfigMap", "late", "", map[string]string{manifest.ArgoSyncWaveAnnotation: "1"}),
	}
	normal, hooks := splitHooks(objs)
	var names []string
	for _, o := range normal {
		names = append(names, manifest.KeyOf(o).Name)
	}
	if diff := cmp.Diff([]string{"plain", "late"}, names); diff != "" {
		t.Errorf("objects kept in sync (-want +got):\n%s", diff)
	}
	scope := func(schema.GroupKind) (bool, error) { return true, nil }
	hw, err := apply.Plan(hooks, "app", scope)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := hookSpecs("shop", "sha256:d1", hw)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range specs {
		got = append(got, fmt.Sprintf("%s %d %s", s.phase, s.wave, s.key))
	}
	want := []string{
		"PreSync -1 /Pod app/seed-",
		"PreSync 2 /Pod app/migrate-",
		"Sync 5 /Pod app/during",
		"PostSync 0 /Pod app/smoke",
		"SyncFail 0 /Pod app/smoke",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hook plan (-want +got):\n%s", diff)
	}
	if w := phaseWaves(specs, manifest.PreSync); len(w) != 2 || w[0][0].wave != -1 || w[1][0].wave != 2 {
		t.Errorf("PreSync waves: %v", w)
	}
	p := specs[1].desired
	if p.GetAnnotations()[manifest.TrackingAnnotation] != "" || p.GetAnnotations()[hookOfAnnotation] != "shop:/Pod:app/migrate-" ||
		p.GetLabels()[apply.ManagedLabel] != "true" || p.GetLabels()[hookLabel] == "" || p.GetGenerateName() != "migrate-" ||
		p.GetAnnotations()[hookRunAnnotation] != "sha256:d1 PreSync" {
		t.Errorf("prepared hook: annotations %v labels %v", p.GetAnnotations(), p.GetLabels())
	}

	ow, err := apply.Plan(normal, "app", scope)
	if err != nil {
		t.Fatal(err)
	}
	var merged []string
	for _, w := range mergeWaves(ow, phaseWaves(specs, manifest.Sync)) {
		merged = append(merged, fmt.Sprintf("%d objects=%v hooks=%d", w.num, w.wave != nil, len(w.hooks)))
	}
	if diff := cmp.Diff([]string{"0 objects=true hooks=0", "1 objects=true hooks=0", "5 objects=false hooks=1"}, merged); diff != "" {
		t.Errorf("Sync phase waves (-want +got):\n%s", diff)
	}
}

func TestHooksDue(t *testing.T) {
	for _, tc := range []struct {
		by, digest, done string
		want             bool
	}{
		{by: "automated", digest: "d2", done: "d1", want: true},  // a new bundle
		{by: "automated", digest: "d1", done: "d1", want: false}, // a restart or a resync of the same bundle
		{by: "admin", digest: "d1", done: "d1", want: true},      // a manual sync
		{by: "automated", digest: "d1", done: "", want: true},    // never ran
	} {
		if got := hooksDue(tc.by, tc.digest, tc.done); got != tc.want {
			t.Errorf("hooksDue(%q, %q, %q) = %v, want %v", tc.by, tc.digest, tc.done, got, tc.want)
		}
	}
}

func TestHookOutcome(t *testing.T) {
	job := func(conds ...map[string]any) *unstructured.Unstructured {
		cs := make([]any, len(conds))
		for i, c := range conds {
			cs[i] = c
		}
		return testenv.Obj(map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": "j"}, "status": map[string]any{"conditions": cs}})
	}
	pod := func(phase string) *unstructured.Unstructured {
		return testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"}, "status": map[string]any{"phase": phase, "message": "m"}})
	}
	run, ok, bad := apiv1alpha1.HookResult_STATUS_RUNNING, apiv1alpha1.HookResult_STATUS_SUCCEEDED, apiv1alpha1.HookResult_STATUS_FAILED
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
		want apiv1alpha1.HookResult_Status
		msg  string
	}{
		{name: "job started", obj: job(), want: run, msg: "job has not completed"},
		{name: "job success criteria met, not yet complete", obj: job(map[string]any{"type": "SuccessCriteriaMet", "status": "True"}), want: run, msg: "job has not completed"},
		{name: "job complete", obj: job(map[string]any{"type": "Complete", "status": "True"}), want: ok},
		{name: "job failed", obj: job(map[string]any{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}), want: bad, msg: "BackoffLimitExceeded"},
		{name: "pod running", obj: pod("Running"), want: run, msg: "pod is Running"},
		{name: "pod succeeded", obj: pod("Succeeded"), want: ok, msg: "m"},
		{name: "pod failed", obj: pod("Failed"), want: bad, msg: "m"},
		{name: "configmap", obj: hookObj("ConfigMap", "c", "", nil), want: ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := hookOutcome(tc.obj)
			if got != tc.want || msg != tc.msg {
				t.Errorf("hookOutcome = %v %q, want %v %q", got, msg, tc.want, tc.msg)
			}
		})
	}
}
