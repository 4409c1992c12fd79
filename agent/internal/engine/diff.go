package engine

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// selfHeal reports whether drift is reverted at once: the policy asks for
// it and the loaded bundle passed a sync's dry-run.
func (a *app) selfHeal() bool {
	return a.policy.GetAutomated() && a.policy.GetSelfHeal() && a.valid != "" && a.valid == a.bundle.GetDigest()
}

// check looks at the live state of keys after watch events (or for every
// object with force, which ignores remembered fingerprints) and decides
// drift: in sync, drifted (reported with a diff) or self-healed.
func (a *app) check(ctx context.Context, keys []manifest.Key, force bool) {
	states := make([]*objState, 0, len(keys))
	for _, k := range keys {
		if st, ok := a.objs[k]; ok {
			states = append(states, st)
		}
	}
	_ = parallel(ctx, a.e.opts.Parallelism, states, func(ctx context.Context, st *objState) error {
		a.checkObject(ctx, st, force)
		return nil
	})
}

func (a *app) checkObject(ctx context.Context, st *objState, force bool) {
	defer a.e.metrics.checks.Inc()
	if err := a.mapObject(ctx, st); err != nil {
		st.objMemory = st.failed(err)
		return
	}
	live, found := a.e.cache.Get(st.gvr, st.key.Namespace, st.key.Name)
	l := look{now: a.e.clock.Now(), force: force, selfHeal: a.selfHeal(), rules: a.hasRules(st.key), found: found}
	if found {
		l.liveRV, l.liveFP = live.GetResourceVersion(), diff.Fingerprint(live)
		l.conflict = a.ownerConflict(st, live)
	} else {
		live = nil
	}
	var v verdict
	st.objMemory, v = decideLook(st.objMemory, l)
	if v.step == stepDryRun {
		a.takeOver(ctx, st, live)
		live = a.withManagedFields(ctx, st, live)
		dry, err := a.e.applier.Apply(ctx, st.desired, true)
		if err != nil {
			st.objMemory = st.failed(err)
			return
		}
		st.objMemory, v = decideCompare(st.objMemory, l, diff.Compare(st.key, dry, live, a.rules))
	}
	if v.drift {
		a.e.metrics.drift.Inc()
	}
	if v.logDrift != "" {
		a.log.Info("drift detected: "+v.logDrift, "object", st.key.String())
	}
	switch v.step {
	case stepHeal:
		a.heal(ctx, st, live)
	case stepHealBlind:
		if a.heal(ctx, st, live) {
			a.e.metrics.drift.Inc()
		}
	}
}

// withManagedFields returns live with its managedFields (read from the API
// server) when an ignore rule by field manager applies to it; the watch cache
// keeps none.
func (a *app) withManagedFields(ctx context.Context, st *objState, live *unstructured.Unstructured) *unstructured.Unstructured {
	if live == nil || !diff.NeedManagedFields(st.key, a.rules) {
		return live
	}
	full, found, err := a.e.applier.Get(ctx, st.desired.GroupVersionKind(), st.key.Namespace, st.key.Name)
	if err != nil || !found {
		return live
	}
	return full
}

func (a *app) hasRules(k manifest.Key) bool {
	for _, r := range a.rules {
		if (r.Group == "*" || r.Group == k.Group) && (r.Kind == "*" || r.Kind == k.Kind) {
			return true
		}
	}
	return false
}
