package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

const (
	stSynced    = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED
	stOutOfSync = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
	stUnknown   = apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN
)

var cmpMemory = cmp.AllowUnexported(objMemory{}, healLimiter{}, verdict{}, healResult{})

// TestDecideLook covers every branch of a look at the live state, from the
// memory an object has in each situation.
func TestDecideLook(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	inSync := objMemory{sync: stSynced, liveFP: "fp1", appliedRV: "7", appliedAt: t0}
	conflict := errors.New("apps/Deployment/ns/web: object is managed by another app: other")
	tests := []struct {
		name string
		mem  objMemory
		look look
		want objMemory
		v    verdict
	}{
		{
			name: "deleted out of band with self-heal: drift, heal",
			mem:  inSync, look: look{now: t0.Add(time.Minute), selfHeal: true},
			want: objMemory{sync: stOutOfSync, message: msgMissing, appliedRV: "7", appliedAt: t0},
			v:    verdict{step: stepHeal, drift: true, logDrift: "object deleted"},
		},
		{
			name: "deleted out of band without self-heal: drift reported",
			mem:  inSync, look: look{now: t0.Add(time.Minute)},
			want: objMemory{sync: stOutOfSync, message: msgMissing, appliedRV: "7", appliedAt: t0},
			v:    verdict{drift: true, logDrift: "object deleted"},
		},
		{
			name: "not created yet after loading a bundle: no drift",
			mem:  objMemory{sync: stUnknown}, look: look{now: t0, selfHeal: true},
			want: objMemory{sync: stOutOfSync, message: msgMissing},
			v:    verdict{step: stepHeal},
		},
		{
			name: "an event older than our write, just after it: skipped",
			mem:  inSync, look: look{now: t0.Add(time.Second), found: true, liveRV: "6", liveFP: "fp0", selfHeal: true},
			want: inSync,
			v:    verdict{step: stepSkip},
		},
		{
			name: "an older resourceVersion long after the write (etcd restored): looked at",
			mem:  inSync, look: look{now: t0.Add(time.Minute), found: true, liveRV: "6", liveFP: "fp0", selfHeal: true},
			want: inSync,
			v:    verdict{step: stepHealBlind},
		},
		{
			name: "the state known to match: in sync, a delayed heal is over",
			mem:  objMemory{sync: stOutOfSync, message: msgHealDelayed, liveFP: "fp1", healAt: t0.Add(time.Second)},
			look: look{now: t0, found: true, liveRV: "9", liveFP: "fp1", selfHeal: true},
			want: objMemory{sync: stSynced, liveFP: "fp1"},
		},
		{
			name: "a refresh ignores the remembered fingerprint",
			mem:  inSync, look: look{now: t0.Add(time.Minute), force: true, found: true, liveRV: "7", liveFP: "fp1", selfHeal: true},
			want: inSync,
			v:    verdict{step: stepDryRun},
		},
		{
			name: "owned by another app: refused, never healed",
			mem:  inSync, look: look{now: t0.Add(time.Minute), found: true, liveRV: "8", liveFP: "fp2", selfHeal: true, conflict: conflict},
			want: objMemory{sync: stOutOfSync, message: conflict.Error(), appliedRV: "7", appliedAt: t0},
		},
		{
			name: "changed, self-heal, no ignore rules: re-applied without a dry-run",
			mem:  inSync, look: look{now: t0.Add(time.Minute), found: true, liveRV: "8", liveFP: "fp2", selfHeal: true},
			want: inSync,
			v:    verdict{step: stepHealBlind},
		},
		{
			name: "changed, self-heal, ignore rules: compared first",
			mem:  inSync, look: look{now: t0.Add(time.Minute), found: true, liveRV: "8", liveFP: "fp2", selfHeal: true, rules: true},
			want: inSync,
			v:    verdict{step: stepDryRun},
		},
		{
			name: "changed, no self-heal: compared",
			mem:  inSync, look: look{now: t0.Add(time.Minute), found: true, liveRV: "8", liveFP: "fp2"},
			want: inSync,
			v:    verdict{step: stepDryRun},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, v := decideLook(tc.mem, tc.look)
			if d := cmp.Diff(tc.want, got, cmpMemory); d != "" {
				t.Errorf("memory (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.v, v, cmpMemory); d != "" {
				t.Errorf("verdict (-want +got):\n%s", d)
			}
		})
	}
}

// TestDecideCompare covers the verdicts after a dry-run: equal, drift to
// heal, drift to report, a pending change and a report repeated.
func TestDecideCompare(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := look{now: t0, found: true, liveRV: "12", liveFP: "fp3"}
	heal := l
	heal.selfHeal = true
	equal, differs := diff.Result{Equal: true}, diff.Result{Diff: "-replicas: 2\n+replicas: 5\n"}
	tests := []struct {
		name string
		mem  objMemory
		look look
		res  diff.Result
		want objMemory
		v    verdict
	}{
		{
			name: "equal: in sync at this version",
			mem:  objMemory{sync: stOutOfSync, message: msgDiffers, diff: "x", healAt: t0},
			look: l, res: equal,
			want: objMemory{sync: stSynced, liveFP: "fp3", appliedRV: "12", appliedAt: t0},
		},
		{
			name: "differs with self-heal: drift, healed",
			mem:  objMemory{sync: stSynced, liveFP: "fp1"},
			look: heal, res: differs,
			want: objMemory{sync: stSynced, liveFP: "fp1"},
			v:    verdict{step: stepHeal, drift: true},
		},
		{
			name: "differs after being in sync: drift reported with the diff",
			mem:  objMemory{sync: stSynced, liveFP: "fp1"},
			look: l, res: differs,
			want: objMemory{sync: stOutOfSync, message: msgDiffers, diff: differs.Diff},
			v:    verdict{drift: true, logDrift: "live object differs"},
		},
		{
			name: "differs right after loading a bundle: a pending change, not drift",
			mem:  objMemory{sync: stUnknown},
			look: l, res: differs,
			want: objMemory{sync: stOutOfSync, message: msgDiffers, diff: differs.Diff},
		},
		{
			name: "the same difference again: nothing new",
			mem:  objMemory{sync: stOutOfSync, message: msgDiffers, diff: differs.Diff},
			look: l, res: differs,
			want: objMemory{sync: stOutOfSync, message: msgDiffers, diff: differs.Diff},
		},
		{
			name: "a new difference on top of one reported: drift",
			mem:  objMemory{sync: stOutOfSync, message: msgDiffers, diff: "-a\n+b\n"},
			look: l, res: differs,
			want: objMemory{sync: stOutOfSync, message: msgDiffers, diff: differs.Diff},
			v:    verdict{drift: true, logDrift: "live object differs"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, v := decideCompare(tc.mem, tc.look, tc.res)
			if d := cmp.Diff(tc.want, got, cmpMemory); d != "" {
				t.Errorf("memory (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.v, v, cmpMemory); d != "" {
				t.Errorf("verdict (-want +got):\n%s", d)
			}
		})
	}
}

// TestHealSequence drives one object through a fight with another
// controller and a run of refusals on a fake timeline: which heals write
// at once, which wait and until when, what is counted and logged.
func TestHealSequence(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := defaultHealPacing
	refused := errors.New("admission webhook \"policy\" denied the request:\n  replicas must be 3")
	type event struct {
		at      time.Duration // since t0
		err     error         // the write's refusal
		changed bool          // the write reverted drift
		// want
		writes   bool
		healAt   time.Duration // since t0, when delayed or refused
		result   healResult
		failures int
		wantSync apiv1alpha1.SyncStatus
	}
	oneLineMsg := "admission webhook \"policy\" denied the request: replicas must be 3"
	events := []event{
		{at: 0, changed: true, writes: true, result: healResult{healed: true}, wantSync: stSynced},
		{at: 100 * time.Millisecond, changed: true, writes: true, result: healResult{healed: true}, wantSync: stSynced},
		{at: 200 * time.Millisecond, changed: true, writes: true, result: healResult{healed: true}, wantSync: stSynced},
		{at: 300 * time.Millisecond, changed: true, writes: true, result: healResult{healed: true}, wantSync: stSynced},
		{at: 400 * time.Millisecond, changed: true, writes: true, result: healResult{healed: true}, wantSync: stSynced},
		// Five in a row within a second each: the sixth waits 250 ms
		// after the last heal.
		{at: 500 * time.Millisecond, writes: false, healAt: 650 * time.Millisecond, wantSync: stOutOfSync},
		// A write that changed nothing (our own apply came back) is no
		// heal; after a quiet spell the pacing starts over.
		{at: 10 * time.Second, changed: false, writes: true, wantSync: stSynced},
		// The API server refuses: retried 1 s, then 2 s later; logged once.
		{at: 20 * time.Second, err: refused, writes: true, healAt: 21 * time.Second, result: healResult{refused: oneLineMsg, newRefusal: true}, failures: 1, wantSync: stOutOfSync},
		{at: 21 * time.Second, err: refused, writes: true, healAt: 23 * time.Second, result: healResult{refused: oneLineMsg}, failures: 2, wantSync: stOutOfSync},
		{at: 23 * time.Second, changed: true, writes: true, result: healResult{healed: true}, wantSync: stSynced},
	}
	m := objMemory{sync: stSynced}
	for i, ev := range events {
		now := t0.Add(ev.at)
		var ok bool
		m, ok = healNow(m, p, now)
		if ok != ev.writes {
			t.Fatalf("event %d at %v: writes %v, want %v", i, ev.at, ok, ev.writes)
		}
		var r healResult
		if ok {
			if ev.err == nil {
				m = written(m, "1", "fp", now)
			}
			m, r = afterHeal(m, p, now, ev.err, ev.changed)
		}
		if r != ev.result {
			t.Errorf("event %d at %v: result %+v, want %+v", i, ev.at, r, ev.result)
		}
		if ev.healAt != 0 && !m.healAt.Equal(t0.Add(ev.healAt)) {
			t.Errorf("event %d at %v: heal due at %v, want %v", i, ev.at, m.healAt.Sub(t0), ev.healAt)
		}
		if m.healFailures != ev.failures || m.sync != ev.wantSync {
			t.Errorf("event %d at %v: failures %d sync %v, want %d %v", i, ev.at, m.healFailures, m.sync, ev.failures, ev.wantSync)
		}
		if ev.err != nil && m.message != msgHealRefused+oneLineMsg {
			t.Errorf("event %d: message %q", i, m.message)
		}
	}
}

// TestRetryAfter: a failed sync retries with the app's backoff until its
// limit, from the time passed in.
func TestRetryAfter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newRetry(&apiv1alpha1.Retry{Limit: 2, BackoffDurationMs: 1000, BackoffFactor: 2, BackoffMaxDurationMs: 60000})
	for i, want := range []time.Duration{time.Second, 2 * time.Second} {
		at, ok := retryAfter(b, t0)
		// backoff/v4 jitters by ±10%.
		if d := at.Sub(t0); !ok || d < want*9/10 || d > want*11/10 {
			t.Fatalf("retry %d: at +%v ok %v, want +%v±10%%", i+1, d, ok, want)
		}
	}
	if _, ok := retryAfter(b, t0); ok {
		t.Fatal("a third retry with limit 2")
	}
	forever := newRetry(nil)
	for range 50 {
		if _, ok := retryAfter(forever, t0); !ok {
			t.Fatal("the default policy stopped retrying")
		}
	}
}
