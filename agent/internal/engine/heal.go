package engine

import (
	"time"

	"github.com/cenkalti/backoff/v4"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
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
