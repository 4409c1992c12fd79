package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/health"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Marks on hook objects. A hook carries no tracking annotation: it is not
// part of the app's kept-in-sync objects (never drift, never pruned as a
// left-over, never OutOfSync).
const (
	// hookOfAnnotation holds the hook's identity,
	// "<app>:<group>/<kind>:<namespace>/<name or generateName>".
	hookOfAnnotation = "flotilla.dev/hook-of"
	// hookLabel holds a hash of the identity, so that earlier instances
	// of a hook (BeforeHookCreation) are found by a label selector.
	hookLabel = "flotilla.dev/hook"
	// hookRunAnnotation names the run an instance belongs to, "<bundle
	// digest> <phase>", so that an agent restarted while a hook ran adopts
	// it instead of starting it again.
	hookRunAnnotation = "flotilla.dev/hook-run"
)

// initiatedAutomated is Operation.initiated_by of automated syncs and
// their retries.
const initiatedAutomated = "automated"

// hookSpec is one hook of the loaded bundle in one of its phases.
type hookSpec struct {
	// key is the hook's identity: metadata.name, or metadata.generateName.
	key     manifest.Key
	phase   manifest.HookPhase
	wave    int
	hook    manifest.Hook
	desired *unstructured.Unstructured // prepared: namespace, labels, annotation

	gvr        schema.GroupVersionResource
	namespaced bool
	mapped     bool
}

// splitHooks separates the hooks among objs from the objects kept in sync.
// Hooks that run in no sync phase (Skip, PreDelete, PostDelete, Helm test,
// delete and rollback hooks) are dropped: they are never applied.
func splitHooks(objs []*unstructured.Unstructured) (normal, hooks []*unstructured.Unstructured) {
	for _, o := range objs {
		h, ok := manifest.HookOf(o)
		switch {
		case !ok:
			normal = append(normal, o)
		case len(h.Phases) > 0:
			hooks = append(hooks, o)
		}
	}
	return normal, hooks
}

// hookSpecs prepares the planned hook objects of app's bundle digest
// (namespaces already set by apply.Plan) into one spec per phase, ordered
// by phase, wave and key.
func hookSpecs(app, digest string, waves []apply.Wave) ([]*hookSpec, error) {
	var out []*hookSpec
	seen := map[manifest.Key]bool{}
	for _, w := range waves {
		for _, step := range w.Steps {
			for _, o := range step.Objects {
				h, _ := manifest.HookOf(o)
				p := prepareHook(app, o)
				k := manifest.KeyOf(p)
				if seen[k] {
					return nil, fmt.Errorf("hook %s appears twice", k)
				}
				seen[k] = true
				for _, ph := range h.Phases {
					d := p.DeepCopy()
					ann := d.GetAnnotations()
					ann[hookRunAnnotation] = digest + " " + string(ph)
					d.SetAnnotations(ann)
					out = append(out, &hookSpec{key: k, phase: ph, wave: w.Wave, hook: h, desired: d})
				}
			}
		}
	}
	slices.SortStableFunc(out, func(x, y *hookSpec) int {
		if c := phaseRank(x.phase) - phaseRank(y.phase); c != 0 {
			return c
		}
		if x.wave != y.wave {
			return x.wave - y.wave
		}
		switch {
		case x.key.Less(y.key):
			return -1
		case y.key.Less(x.key):
			return 1
		}
		return 0
	})
	return out, nil
}

func phaseRank(p manifest.HookPhase) int {
	return slices.Index([]manifest.HookPhase{manifest.PreSync, manifest.Sync, manifest.PostSync, manifest.SyncFail}, p)
}

// phaseWaves returns the hooks of phase grouped by wave, lowest first
// (specs as hookSpecs orders them).
func phaseWaves(specs []*hookSpec, phase manifest.HookPhase) [][]*hookSpec {
	var out [][]*hookSpec
	for _, s := range specs {
		if s.phase != phase {
			continue
		}
		if n := len(out); n > 0 && out[n-1][0].wave == s.wave {
			out[n-1] = append(out[n-1], s)
			continue
		}
		out = append(out, []*hookSpec{s})
	}
	return out
}

// hasPhase reports whether any spec runs in phase.
func hasPhase(specs []*hookSpec, phase manifest.HookPhase) bool {
	return slices.ContainsFunc(specs, func(s *hookSpec) bool { return s.phase == phase })
}

// hooksDue reports whether a sync operation runs the bundle's hooks: a
// manual sync always does; an automated sync and its retries do until an
// operation has run them to success for this bundle digest (done). A
// self-heal is no operation and never runs them.
func hooksDue(initiatedBy, digest, done string) bool {
	return initiatedBy != initiatedAutomated || digest != done
}

// prepareHook returns a copy of the hook object o marked as a hook of app:
// the managed label (so the agent watches it), hookLabel and
// hookOfAnnotation. It carries no tracking annotation.
func prepareHook(app string, o *unstructured.Unstructured) *unstructured.Unstructured {
	out := apply.Prepare(app, o)
	ann := out.GetAnnotations()
	delete(ann, manifest.TrackingAnnotation)
	id := manifest.TrackingID(app, manifest.KeyOf(out))
	ann[hookOfAnnotation] = id
	out.SetAnnotations(ann)
	lbl := out.GetLabels()
	lbl[hookLabel] = hookLabelValue(id)
	out.SetLabels(lbl)
	return out
}

// hookLabelValue is a label-safe hash of a hook identity.
func hookLabelValue(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])[:40]
}

// hookOutcome says whether a live hook object has finished: a Job when its
// Complete or Failed condition is true, a Pod when it Succeeded or Failed,
// any other kind when it is Healthy (succeeded) or Degraded (failed).
func hookOutcome(live *unstructured.Unstructured) (apiv1alpha1.HookResult_Status, string) {
	running, succeeded, failed := apiv1alpha1.HookResult_STATUS_RUNNING, apiv1alpha1.HookResult_STATUS_SUCCEEDED, apiv1alpha1.HookResult_STATUS_FAILED
	gk := live.GroupVersionKind().GroupKind()
	switch gk {
	case schema.GroupKind{Group: "batch", Kind: "Job"}:
		conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["status"] != "True" {
				continue
			}
			msg, _ := m["message"].(string)
			switch m["type"] {
			case "Complete":
				return succeeded, msg
			case "Failed":
				if msg == "" {
					msg, _ = m["reason"].(string)
				}
				return failed, msg
			}
		}
		return running, "job has not completed"
	case schema.GroupKind{Kind: "Pod"}:
		phase, _, _ := unstructured.NestedString(live.Object, "status", "phase")
		msg, _, _ := unstructured.NestedString(live.Object, "status", "message")
		switch phase {
		case "Succeeded":
			return succeeded, msg
		case "Failed":
			return failed, msg
		}
		return running, "pod is " + phase
	}
	switch h := health.Of(live); h.Status {
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY:
		return succeeded, ""
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED:
		return failed, h.Message
	default:
		return running, h.Message
	}
}

// syncWave is one wave of the Sync phase: the objects kept in sync of that
// wave (nil when it has none) and the Sync hooks of that wave.
type syncWave struct {
	num   int
	wave  *apply.Wave
	hooks []*hookSpec
}

// mergeWaves merges the waves of the objects and of the Sync hooks (from
// phaseWaves) into the Sync phase's waves, lowest first.
func mergeWaves(waves []apply.Wave, hookWaves [][]*hookSpec) []syncWave {
	byNum := map[int]*syncWave{}
	var out []*syncWave
	get := func(n int) *syncWave {
		if w, ok := byNum[n]; ok {
			return w
		}
		w := &syncWave{num: n}
		byNum[n] = w
		out = append(out, w)
		return w
	}
	for i := range waves {
		get(waves[i].Wave).wave = &waves[i]
	}
	for _, hw := range hookWaves {
		w := get(hw[0].wave)
		w.hooks = append(w.hooks, hw...)
	}
	slices.SortFunc(out, func(x, y *syncWave) int { return x.num - y.num })
	res := make([]syncWave, len(out))
	for i, w := range out {
		res[i] = *w
	}
	return res
}
