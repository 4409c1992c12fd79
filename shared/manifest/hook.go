package manifest

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Hook annotations, Argo CD's and Helm's. An object carrying one is a
// resource hook: it is created during a sync operation in its phase, not
// kept in sync, never pruned as a left-over and never reported OutOfSync.
const (
	// HookAnnotation names the sync phases of a hook, a comma separated
	// list of HookPhase values.
	HookAnnotation = "argocd.argoproj.io/hook"
	// HookDeletePolicyAnnotation lists the hook's DeletePolicy values.
	HookDeletePolicyAnnotation = "argocd.argoproj.io/hook-delete-policy"
	// HelmHookAnnotation lists Helm hook events; honoured when
	// HookAnnotation is absent, mapped as Argo CD maps them (HelmPhase).
	HelmHookAnnotation = "helm.sh/hook"
	// HelmHookWeightAnnotation orders Helm hooks; it is read as the sync
	// wave when no sync-wave annotation is set.
	HelmHookWeightAnnotation = "helm.sh/hook-weight"
	// HelmHookDeletePolicyAnnotation lists Helm hook delete policies.
	HelmHookDeletePolicyAnnotation = "helm.sh/hook-delete-policy"
)

// HookPhase is a phase of a sync operation a hook runs in.
type HookPhase string

// Hook phases, named as in Argo CD.
const (
	PreSync  HookPhase = "PreSync"
	Sync     HookPhase = "Sync"
	PostSync HookPhase = "PostSync"
	SyncFail HookPhase = "SyncFail"
	// Skip marks an object that is never applied.
	Skip HookPhase = "Skip"
	// PreDelete and PostDelete hooks run when an Argo CD Application is
	// deleted; Flotilla does not run them (they are never applied).
	PreDelete  HookPhase = "PreDelete"
	PostDelete HookPhase = "PostDelete"
)

// phaseOrder is the order in which the phases of one operation run.
var phaseOrder = []HookPhase{PreSync, Sync, PostSync, SyncFail}

// DeletePolicy says when a hook object is deleted.
type DeletePolicy string

// Delete policies, named as in Argo CD.
const (
	// BeforeHookCreation deletes the previous instance of the hook before
	// the hook is created again; the default when none is set.
	BeforeHookCreation DeletePolicy = "BeforeHookCreation"
	// HookSucceeded deletes the hook once it has succeeded.
	HookSucceeded DeletePolicy = "HookSucceeded"
	// HookFailed deletes the hook once it has failed.
	HookFailed DeletePolicy = "HookFailed"
)

// Hook is what an object's hook annotations say.
type Hook struct {
	// Phases are the sync phases the hook runs in, in the order they run
	// (PreSync, Sync, PostSync, SyncFail). Empty for a hook that is never
	// applied during a sync (Skip, PreDelete, PostDelete, Helm hooks of
	// other events, unknown values).
	Phases []HookPhase
	// Skip is set for HookAnnotation "Skip" alone: the object is never
	// applied.
	Skip bool
	// DeletePolicies are the policies set (Argo CD's and Helm's, mapped),
	// sorted; BeforeHookCreation alone when none is set.
	DeletePolicies []DeletePolicy
	// Helm is set when the hook comes from HelmHookAnnotation.
	Helm bool
}

// Has reports whether p is one of h's delete policies.
func (h Hook) Has(p DeletePolicy) bool { return slices.Contains(h.DeletePolicies, p) }

// HookOf reads obj's hook annotations. ok is false for an ordinary object.
// As in Argo CD, HookAnnotation wins over HelmHookAnnotation (the Helm
// annotations are then ignored), unknown phase names are ignored, and a
// hook left with no phase is never applied.
func HookOf(obj *unstructured.Unstructured) (h Hook, ok bool) {
	ann := obj.GetAnnotations()
	var phases []HookPhase
	if v, isArgo := ann[HookAnnotation]; isArgo {
		skip := false
		for _, p := range splitCSV(v) {
			switch ph := HookPhase(p); ph {
			case PreSync, Sync, PostSync, SyncFail:
				phases = append(phases, ph)
			case Skip:
				skip = true
			}
		}
		h.Skip = skip && len(phases) == 0
	} else if v, isHelm := ann[HelmHookAnnotation]; isHelm {
		h.Helm = true
		for _, e := range splitCSV(v) {
			if ph, mapped := HelmPhase(e); mapped {
				phases = append(phases, ph)
			}
		}
	} else {
		return Hook{}, false
	}
	for _, ph := range phaseOrder {
		if slices.Contains(phases, ph) {
			h.Phases = append(h.Phases, ph)
		}
	}
	for _, p := range splitCSV(ann[HookDeletePolicyAnnotation]) {
		switch dp := DeletePolicy(p); dp {
		case BeforeHookCreation, HookSucceeded, HookFailed:
			h.DeletePolicies = appendNew(h.DeletePolicies, dp)
		}
	}
	for _, p := range splitCSV(ann[HelmHookDeletePolicyAnnotation]) {
		if dp, mapped := HelmDeletePolicy(p); mapped {
			h.DeletePolicies = appendNew(h.DeletePolicies, dp)
		}
	}
	if len(h.DeletePolicies) == 0 {
		h.DeletePolicies = []DeletePolicy{BeforeHookCreation}
	}
	slices.Sort(h.DeletePolicies)
	return h, true
}

// HelmPhase maps a Helm hook event to the sync phase Argo CD runs it in:
// pre-install and pre-upgrade are PreSync, post-install and post-upgrade
// PostSync. Other events (test, test-success, test-failure, pre-delete,
// post-delete, pre-rollback, post-rollback, crd-install) have no phase: a
// hook of only those is never applied.
func HelmPhase(event string) (HookPhase, bool) {
	switch event {
	case "pre-install", "pre-upgrade":
		return PreSync, true
	case "post-install", "post-upgrade":
		return PostSync, true
	}
	return "", false
}

// HelmDeletePolicy maps a Helm hook delete policy to Argo CD's.
func HelmDeletePolicy(p string) (DeletePolicy, bool) {
	switch p {
	case "before-hook-creation":
		return BeforeHookCreation, true
	case "hook-succeeded":
		return HookSucceeded, true
	case "hook-failed":
		return HookFailed, true
	}
	return "", false
}

func splitCSV(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func appendNew[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
