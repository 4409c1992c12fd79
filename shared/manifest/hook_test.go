package manifest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestHookOf(t *testing.T) {
	bhc := []DeletePolicy{BeforeHookCreation}
	for _, tc := range []struct {
		name string
		ann  map[string]string
		want Hook
		ok   bool
	}{
		{name: "plain object", ann: map[string]string{"a": "b"}},
		{name: "PreSync, default policy", ann: map[string]string{HookAnnotation: "PreSync"}, ok: true,
			want: Hook{Phases: []HookPhase{PreSync}, DeletePolicies: bhc}},
		{name: "several phases in run order, spaces", ann: map[string]string{HookAnnotation: "SyncFail, PostSync,PreSync"}, ok: true,
			want: Hook{Phases: []HookPhase{PreSync, PostSync, SyncFail}, DeletePolicies: bhc}},
		{name: "Skip", ann: map[string]string{HookAnnotation: "Skip"}, ok: true,
			want: Hook{Skip: true, DeletePolicies: bhc}},
		{name: "delete hooks are not run by a sync", ann: map[string]string{HookAnnotation: "PreDelete"}, ok: true,
			want: Hook{DeletePolicies: bhc}},
		{name: "unknown phase ignored", ann: map[string]string{HookAnnotation: "Presync,Sync"}, ok: true,
			want: Hook{Phases: []HookPhase{Sync}, DeletePolicies: bhc}},
		{name: "policies", ann: map[string]string{HookAnnotation: "PostSync", HookDeletePolicyAnnotation: "HookSucceeded, HookFailed,Bogus"}, ok: true,
			want: Hook{Phases: []HookPhase{PostSync}, DeletePolicies: []DeletePolicy{HookFailed, HookSucceeded}}},
		{name: "helm pre-install and pre-upgrade", ann: map[string]string{HelmHookAnnotation: "pre-install,pre-upgrade", HelmHookDeletePolicyAnnotation: "hook-succeeded,before-hook-creation"}, ok: true,
			want: Hook{Phases: []HookPhase{PreSync}, DeletePolicies: []DeletePolicy{BeforeHookCreation, HookSucceeded}, Helm: true}},
		{name: "helm post-upgrade, hook-failed", ann: map[string]string{HelmHookAnnotation: "post-upgrade", HelmHookDeletePolicyAnnotation: "hook-failed"}, ok: true,
			want: Hook{Phases: []HookPhase{PostSync}, DeletePolicies: []DeletePolicy{HookFailed}, Helm: true}},
		{name: "helm test hook never runs", ann: map[string]string{HelmHookAnnotation: "test"}, ok: true,
			want: Hook{DeletePolicies: bhc, Helm: true}},
		{name: "helm rollback and delete hooks never run", ann: map[string]string{HelmHookAnnotation: "pre-delete,post-delete,pre-rollback,post-rollback"}, ok: true,
			want: Hook{DeletePolicies: bhc, Helm: true}},
		{name: "argo annotation wins over helm's", ann: map[string]string{HookAnnotation: "Sync", HelmHookAnnotation: "pre-install"}, ok: true,
			want: Hook{Phases: []HookPhase{Sync}, DeletePolicies: bhc}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &unstructured.Unstructured{}
			o.SetAnnotations(tc.ann)
			got, ok := HookOf(o)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("hook (-want +got):\n%s", diff)
			}
		})
	}
}
