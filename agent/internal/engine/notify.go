package engine

import (
	"sync"
	"time"
)

// notifier delivers coalesced wake-ups on a buffered-1 channel, at most one
// per interval: the first change is signalled at once, changes within the
// interval once at its end.
type notifier struct {
	c     chan struct{}
	every time.Duration

	mu      sync.Mutex
	last    time.Time
	timer   *time.Timer
	stopped bool
}

func newNotifier(every time.Duration) *notifier {
	return &notifier{c: make(chan struct{}, 1), every: every}
}

func (n *notifier) signal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped || n.timer != nil {
		return
	}
	if wait := time.Until(n.last.Add(n.every)); wait > 0 {
		n.timer = time.AfterFunc(wait, func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.timer = nil
			if !n.stopped {
				n.send()
			}
		})
		return
	}
	n.send()
}

// signalNow delivers a wake-up at once, also within the interval: for
// changes someone waits for (an app's sync state, its last operation), so
// that a Synced that follows another change by a few milliseconds is not
// held to the end of the interval. A wake-up pending for the end of the
// interval is covered by this one.
func (n *notifier) signalNow() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
	n.send()
}

// send must be called with n.mu held.
func (n *notifier) send() {
	n.last = time.Now()
	select {
	case n.c <- struct{}{}:
	default:
	}
}

func (n *notifier) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = true
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
}
