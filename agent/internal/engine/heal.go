package engine

import (
	"context"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// healPacing paces the self-heals of one object: an object may be healed
// burst times in a row at once; a heal counts as "in a row" when the
// previous one was less than fight ago (another controller reverting us).
// After the burst each heal waits twice as long as the last, from base up
// to max.
type healPacing struct {
	burst int
	fight time.Duration
	base  time.Duration
	max   time.Duration
}

// defaultHealPacing: 5 heals at once, a fight is a drift within 1 s of the
// last heal, then 250 ms doubling up to 10 s.
var defaultHealPacing = healPacing{burst: 5, fight: time.Second, base: 250 * time.Millisecond, max: 10 * time.Second}

// healLimiter paces the self-heals of one object. It is a pure function of
// the pacing and the times passed in.
type healLimiter struct {
	last   time.Time
	streak int
}

// delay returns how long a heal wanted at now must wait.
func (h *healLimiter) delay(p healPacing, now time.Time) time.Duration {
	if h.last.IsZero() || now.Sub(h.last) > h.window(p) || h.streak < p.burst {
		return 0
	}
	return max(h.last.Add(h.wait(p)).Sub(now), 0)
}

// wait is the least time after the last heal before the next one, once
// the burst is used up.
func (h *healLimiter) wait(p healPacing) time.Duration {
	return min(p.base<<min(h.streak-p.burst, 10), p.max)
}

// window is how long after a heal a new drift still counts as a fight.
func (h *healLimiter) window(p healPacing) time.Duration {
	if h.streak < p.burst {
		return p.fight
	}
	return p.fight + h.wait(p)
}

// record notes a heal done at now.
func (h *healLimiter) record(p healPacing, now time.Time) {
	if !h.last.IsZero() && now.Sub(h.last) <= h.window(p) {
		h.streak++
	} else {
		h.streak = 1
	}
	h.last = now
}

// Retry defaults when a bundle names no retry policy. An agent must
// converge on its own after transient failures, so unlike Argo CD a failed
// sync is retried without a limit by default.
const (
	defaultRetryInterval = 5 * time.Second
	defaultRetryFactor   = 2
	maxRetryInterval     = 3 * time.Minute
)

// newRetry builds the retry backoff of an app (cenkalti/backoff/v4, with
// jitter, no maximum elapsed time). A negative limit retries forever.
func newRetry(r *apiv1alpha1.Retry) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = defaultRetryInterval
	b.Multiplier = defaultRetryFactor
	b.MaxInterval = maxRetryInterval
	b.MaxElapsedTime = 0
	b.RandomizationFactor = 0.1
	if r == nil {
		b.Reset()
		return b
	}
	if r.GetBackoffDurationMs() > 0 {
		b.InitialInterval = time.Duration(r.GetBackoffDurationMs()) * time.Millisecond
	}
	if r.GetBackoffFactor() >= 1 {
		b.Multiplier = r.GetBackoffFactor()
	}
	if r.GetBackoffMaxDurationMs() > 0 {
		b.MaxInterval = time.Duration(r.GetBackoffMaxDurationMs()) * time.Millisecond
	}
	b.Reset()
	if r.GetLimit() >= 0 {
		return backoff.WithMaxRetries(b, uint64(r.GetLimit()))
	}
	return b
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
	out, _, err := a.write(ctx, st, live)
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

// refusalBackoff spaces out the self-heals of an object the API server
// keeps refusing: 1 s after the first refusal, doubling up to 5 minutes.
func refusalBackoff(failures int) time.Duration {
	return min(time.Second<<min(max(failures-1, 0), 9), 5*time.Minute)
}

// oneLine is err's message on one line (API errors can span several).
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
