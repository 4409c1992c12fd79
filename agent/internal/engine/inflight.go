package engine

import (
	"net/http"
)

// DefaultMaxWritesInFlight bounds the engine's writes to the API server
// under way at once (see Options.MaxWritesInFlight).
const DefaultMaxWritesInFlight = 32

// writeLimiter is an http.RoundTripper that lets at most cap(slots)
// writing requests (every method but GET, HEAD and OPTIONS: applies and
// their dry-runs, deletes, the inventory's Secrets) through at once; the
// others wait for a slot or their request's context. Reads, lists and
// watches pass freely. A slot is held until the answer's headers came.
type writeLimiter struct {
	next  http.RoundTripper
	slots chan struct{}
}

// limitWrites returns a transport wrapper for rest.Config.Wrap: every
// transport it wraps shares the same n slots.
func limitWrites(n int) func(http.RoundTripper) http.RoundTripper {
	slots := make(chan struct{}, n)
	return func(next http.RoundTripper) http.RoundTripper { return &writeLimiter{next: next, slots: slots} }
}

func (l *writeLimiter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return l.next.RoundTrip(r)
	}
	select {
	case l.slots <- struct{}{}:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	defer func() { <-l.slots }()
	return l.next.RoundTrip(r)
}

// WrappedRoundTripper lets client-go see the transport underneath.
func (l *writeLimiter) WrappedRoundTripper() http.RoundTripper { return l.next }
