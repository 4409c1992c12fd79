package engine

import (
	"context"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// staleWindow is how long after our write a cache state older than it is
// taken for a late event rather than the live state.
const staleWindow = 10 * time.Second

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
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
		return
	}
	live, found := a.e.cache.Get(st.gvr, st.key.Namespace, st.key.Name)
	if !found {
		if st.sync == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
			a.e.metrics.drift.Inc()
			a.log.Info("drift detected: object deleted", "object", st.key.String())
		}
		st.liveFP, st.diff = "", ""
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, "object does not exist"
		if a.selfHeal() {
			a.heal(ctx, st, nil)
		}
		return
	}
	if time.Since(st.appliedAt) < staleWindow && older(live.GetResourceVersion(), st.appliedRV) {
		// The cache has not caught up with our last write yet (an
		// event of an earlier version came in after it): this is not
		// the live state, and the event of our write follows. Only
		// shortly after the write: once etcd is restored from a backup,
		// resourceVersions go back for good.
		return
	}
	fp := diff.Fingerprint(live)
	if !force && fp == st.liveFP {
		// The live object is in a state known to match desired, again
		// or still. Any verdict given since (a self-heal delayed, a
		// failed heal) is over, and so is a pending heal.
		st.healAt = time.Time{}
		st.sync, st.message, st.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, "", ""
		return
	}
	if err := a.ownerConflict(st, live); err != nil {
		st.liveFP = ""
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
		return
	}
	if !force && a.selfHeal() && !a.hasRules(st.key) {
		// Re-apply straight away: an apply that changes nothing writes
		// nothing, and this saves the dry-run round trip. It was drift
		// when the write changed the object.
		if a.heal(ctx, st, live) {
			a.e.metrics.drift.Inc()
		}
		return
	}
	a.takeOver(ctx, st, live)
	live = a.withManagedFields(ctx, st, live)
	dry, err := a.e.applier.Apply(ctx, st.desired, true)
	if err != nil {
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
		return
	}
	res := diff.Compare(st.key, dry, live, a.rules)
	if res.Equal {
		st.healAt = time.Time{}
		st.liveFP, st.diff = fp, ""
		st.appliedRV, st.appliedAt = live.GetResourceVersion(), time.Now()
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, ""
		return
	}
	if a.selfHeal() {
		a.e.metrics.drift.Inc()
		a.heal(ctx, st, live)
		return
	}
	if st.sync != apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC || st.diff != res.Diff {
		// A first difference found after loading a bundle is a pending
		// change, not drift.
		if st.sync == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED || st.diff != "" {
			a.e.metrics.drift.Inc()
		}
		a.log.Info("drift detected", "object", st.key.String())
	}
	st.liveFP = ""
	st.sync, st.message, st.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, "live object differs from desired", res.Diff
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
// changed back (healLimiter). It reports whether the write changed the
// object (or re-created it).
func (a *app) heal(ctx context.Context, st *objState, live *unstructured.Unstructured) bool {
	now, pace := time.Now(), a.e.opts.healPacing
	if d := st.heal.delay(pace, now); d > 0 {
		st.healAt = now.Add(d)
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, "self-heal delayed: the object keeps changing back"
		a.log.Debug("self-heal delayed", "object", st.key.String(), "delay", d)
		return false
	}
	out, err := a.write(ctx, st, live)
	if err != nil {
		st.heal.record(pace, now)
		st.healFailures++
		st.healAt = now.Add(max(st.heal.delay(pace, now), refusalBackoff(st.healFailures)))
		msg := oneLine(err)
		if msg != st.healErr {
			a.log.Warn("self-heal refused", "object", st.key.String(), "error", msg, "retry_in", time.Until(st.healAt).Round(time.Second))
		} else {
			a.log.Debug("self-heal refused again", "object", st.key.String(), "failures", st.healFailures)
		}
		st.healErr = msg
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, "self-heal refused: "+msg
		return false
	}
	st.healErr, st.healFailures = "", 0
	if healed(st.key, out, live, a.rules) {
		st.heal.record(pace, now)
		a.e.metrics.selfHeals.Inc()
		a.log.Info("self-healed drift", "object", st.key.String())
		return true
	}
	return false
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
