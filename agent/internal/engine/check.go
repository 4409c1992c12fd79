package engine

import (
	"context"
	"strings"
	"time"

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

// heal re-applies st.desired now, or later when the object keeps being
// changed back (healNow). It reports whether the write changed the object
// (or re-created it).
func (a *app) heal(ctx context.Context, st *objState, live *unstructured.Unstructured) bool {
	now, pace := a.e.clock.Now(), a.e.opts.healPacing
	var now2 bool
	if st.objMemory, now2 = healNow(st.objMemory, pace, now); !now2 {
		a.log.Debug("self-heal delayed", "object", st.key.String(), "until", st.healAt)
		return false
	}
	out, err := a.write(ctx, st, live)
	var r healResult
	st.objMemory, r = afterHeal(st.objMemory, pace, now, err, err == nil && healed(st.key, out, live, a.rules))
	switch {
	case r.newRefusal:
		a.log.Warn("self-heal refused", "object", st.key.String(), "error", r.refused, "retry_in", st.healAt.Sub(now).Round(time.Second))
	case r.refused != "":
		a.log.Debug("self-heal refused again", "object", st.key.String(), "failures", st.healFailures)
	case r.healed:
		a.e.metrics.selfHeals.Inc()
		a.log.Info("self-healed drift", "object", st.key.String())
	}
	return r.healed
}

// healed decides whether a self-heal write reverted drift: the object was
// gone, or what the write left differs from the live object the agent saw
// in a field the comparison looks at. A write that changed nothing of the
// kind (the object was touched by the agent's own apply, or a controller
// changed a field the bundle leaves out, such as an HPA scaling replicas,
// or only status and server-owned metadata moved) is not drift, whatever
// the resourceVersion did.
func healed(k manifest.Key, out, live *unstructured.Unstructured, rules []diff.Rule) bool {
	return live == nil || !diff.Compare(k, out, live, rules).Equal
}

// takeOver gives the agent the fields that other managers (kubectl, Argo
// CD, Helm; see apply.ForeignManagers) hold on live, an object it is about
// to dry-run or write, so that the apply removes what the bundle no longer
// sets and replaces list entries they added. Nothing is read unless the
// watch cache shows such a manager. A failure is logged; the apply that
// follows reports what the API server says.
func (a *app) takeOver(ctx context.Context, st *objState, live *unstructured.Unstructured) {
	if live == nil {
		return
	}
	foreign := a.e.applier.ForeignManagers(live)
	if len(foreign) == 0 {
		return
	}
	done, err := a.e.applier.TakeOver(ctx, st.desired.GroupVersionKind(), st.key.Namespace, st.key.Name)
	switch {
	case err != nil:
		a.log.Warn("taking over fields failed", "object", st.key.String(), "managers", strings.Join(foreign, ","), "error", err)
	case done:
		a.log.Info("took over fields of other managers", "object", st.key.String(), "managers", strings.Join(foreign, ","))
	}
}

// refusalBackoff spaces out the self-heals of an object the API server
// keeps refusing: 1 s after the first refusal, doubling up to 5 minutes.
func refusalBackoff(failures int) time.Duration {
	return min(time.Second<<min(max(failures-1, 0), 9), 5*time.Minute)
}

// oneLine is err's message on one line (API errors can span several).
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
