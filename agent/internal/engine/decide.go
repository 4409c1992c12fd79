package engine

import (
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// This file is the engine's decision core: what to make of one object's
// live state (in sync, not yet seen, drifted, to be healed now or later),
// what a self-heal's outcome means, and when a failed sync runs again. Each
// decision is a pure function of what the agent remembers about the object
// (objMemory), what it observed, and the time passed in; the callers in
// check.go and sync.go do the reads and writes. Tests drive every case as a
// table (decide_test.go) without an API server.

// objMemory is what the agent remembers about one desired object between
// two looks at it. Only the functions of this file change it.
type objMemory struct {
	sync    apiv1alpha1.SyncStatus
	message string
	diff    string
	// liveFP is the fingerprint of the live object last known to match
	// desired; an event with the same fingerprint needs no API request
	// and finds the object in sync (ending a delayed heal).
	liveFP string
	// appliedRV is the resourceVersion our last write produced (or the
	// last live one found equal), at appliedAt; a cache state older than
	// it, seen shortly after, is not checked (its event follows).
	appliedRV string
	appliedAt time.Time
	heal      healLimiter
	healAt    time.Time // a delayed self-heal is due then
	// healErr is the API server's refusal of the last self-heal, on one
	// line ("" once a write succeeds); healFailures counts refusals in a
	// row, which space the retries out (refusalBackoff).
	healErr      string
	healFailures int
}

// staleWindow is how long after our write a cache state older than it is
// taken for a late event rather than the live state.
const staleWindow = 10 * time.Second

// Messages of the verdicts.
const (
	msgMissing     = "object does not exist"
	msgDiffers     = "live object differs from desired"
	msgHealDelayed = "self-heal delayed: the object keeps changing back"
	msgHealRefused = "self-heal refused: "
)

// look is what the agent observed of one object's live state.
type look struct {
	now time.Time
	// force ignores the remembered fingerprint (a refresh).
	force bool
	// selfHeal: the policy heals drift and the bundle passed its dry-run.
	selfHeal bool
	// rules: ignoreDifferences apply to the object, so a heal must keep
	// the ignored live values and the comparison needs the dry-run.
	rules bool
	found bool
	// liveRV, liveFP: the live object's resourceVersion and
	// diff.Fingerprint (when found).
	liveRV string
	liveFP string
	// conflict: another app held by this agent owns the object.
	conflict error
}

// step is what the caller does after a decision.
type step int

const (
	stepNone   step = iota // the memory holds the verdict
	stepSkip               // the cache lags behind our write; its event follows
	stepDryRun             // compare a server-side dry-run with the live object
	stepHeal               // self-heal: write desired (healNow paces it)
	// stepHealBlind re-applies without a dry-run: an apply that changes
	// nothing writes nothing; it was drift when the write changed the
	// object (healed).
	stepHealBlind
)

// verdict is a decision: the next step, and what to report.
type verdict struct {
	step step
	// drift counts a drift event (flotilla_agent_drift_events_total).
	drift bool
	// logDrift says why the drift is logged ("" for none).
	logDrift string
}

// decideLook decides what a look at the live state means before any
// request: nothing to do, or the step that needs the API server.
func decideLook(m objMemory, l look) (objMemory, verdict) {
	if !l.found {
		var v verdict
		if m.sync == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
			v.drift, v.logDrift = true, "object deleted"
		}
		m.liveFP, m.diff = "", ""
		m.sync, m.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, msgMissing
		if l.selfHeal {
			v.step = stepHeal
		}
		return m, v
	}
	if l.now.Sub(m.appliedAt) < staleWindow && older(l.liveRV, m.appliedRV) {
		// The cache has not caught up with our last write yet (an event
		// of an earlier version came in after it): this is not the live
		// state, and the event of our write follows. Only shortly after
		// the write: once etcd is restored from a backup,
		// resourceVersions go back for good.
		return m, verdict{step: stepSkip}
	}
	if !l.force && l.liveFP == m.liveFP {
		// The live object is in a state known to match desired, again or
		// still. Any verdict given since (a self-heal delayed, a failed
		// heal) is over, and so is a pending heal.
		m.healAt = time.Time{}
		m.sync, m.message, m.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, "", ""
		return m, verdict{}
	}
	if l.conflict != nil {
		m.liveFP = ""
		m.sync, m.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, l.conflict.Error()
		return m, verdict{}
	}
	if !l.force && l.selfHeal && !l.rules {
		return m, verdict{step: stepHealBlind}
	}
	return m, verdict{step: stepDryRun}
}

// decideCompare decides after the dry-run: in sync, drift to heal, or drift
// (or a pending change) to report with its diff.
func decideCompare(m objMemory, l look, res diff.Result) (objMemory, verdict) {
	if res.Equal {
		return matched(m, l.liveRV, l.liveFP, l.now), verdict{}
	}
	if l.selfHeal {
		return m, verdict{step: stepHeal, drift: true}
	}
	var v verdict
	if m.sync != apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC || m.diff != res.Diff {
		// A first difference found after loading a bundle is a pending
		// change, not drift.
		if m.sync == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED || m.diff != "" {
			v.drift, v.logDrift = true, "live object differs"
		}
	}
	m.liveFP = ""
	m.sync, m.message, m.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, msgDiffers, res.Diff
	return m, v
}

// failed records an error of a read or dry-run as the object's verdict.
func (m objMemory) failed(err error) objMemory {
	m.sync, m.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
	return m
}

// healNow decides whether a self-heal wanted at now writes at once or is
// delayed (another controller keeps changing the object back); delayed, the
// memory holds when.
func healNow(m objMemory, p healPacing, now time.Time) (objMemory, bool) {
	d := m.heal.delay(p, now)
	if d <= 0 {
		return m, true
	}
	m.healAt = now.Add(d)
	m.sync, m.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, msgHealDelayed
	return m, false
}

// healResult is what a self-heal write's outcome means for reporting.
type healResult struct {
	// healed counts a self-heal (flotilla_agent_self_heal_total).
	healed bool
	// refused is the refusal on one line; newRefusal: it differs from the
	// last one (logged as a warning, a repeat only at debug level).
	refused    string
	newRefusal bool
}

// afterHeal records the outcome of a self-heal write done at now: err is
// the API server's refusal, changed whether the write reverted drift
// (healed). written records a successful write first.
func afterHeal(m objMemory, p healPacing, now time.Time, err error, changed bool) (objMemory, healResult) {
	if err != nil {
		m.heal.record(p, now)
		m.healFailures++
		m.healAt = now.Add(max(m.heal.delay(p, now), refusalBackoff(m.healFailures)))
		msg := oneLine(err)
		r := healResult{refused: msg, newRefusal: msg != m.healErr}
		m.healErr = msg
		m.sync, m.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, msgHealRefused+msg
		return m, r
	}
	m.healErr, m.healFailures = "", 0
	if changed {
		m.heal.record(p, now)
		return m, healResult{healed: true}
	}
	return m, healResult{}
}

// matched records that the live object (resourceVersion rv, fingerprint fp)
// was found equal to desired at now.
func matched(m objMemory, rv, fp string, now time.Time) objMemory {
	m.healAt = time.Time{}
	m.liveFP, m.diff = fp, ""
	m.appliedRV, m.appliedAt = rv, now
	m.sync, m.message = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, ""
	return m
}

// written records a successful write at now that left the object with
// resourceVersion rv and fingerprint fp: it is in sync, and any pending or
// refused heal is over.
func written(m objMemory, rv, fp string, now time.Time) objMemory {
	m.liveFP, m.appliedRV, m.appliedAt = fp, rv, now
	m.healAt, m.healErr, m.healFailures = time.Time{}, "", 0
	m.sync, m.message, m.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, "", ""
	return m
}

// retryAfter decides, after a failed sync at now, whether and when it runs
// again with the app's backoff (which it advances).
func retryAfter(b backoff.BackOff, now time.Time) (time.Time, bool) {
	d := b.NextBackOff()
	if d == backoff.Stop {
		return time.Time{}, false
	}
	return now.Add(d), true
}
