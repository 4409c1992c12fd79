package engine

import (
	"testing"
	"time"
)

// TestNotifierSignalNow: within the interval, signal waits for its end
// while signalNow delivers at once. The interval is an hour, so nothing
// here depends on how fast the test runs.
func TestNotifierSignalNow(t *testing.T) {
	n := newNotifier(time.Hour)
	defer n.stop()
	ready := func() bool {
		select {
		case <-n.c:
			return true
		default:
			return false
		}
	}
	n.signal()
	if !ready() {
		t.Fatal("first signal not delivered at once")
	}
	n.signal()
	if ready() {
		t.Fatal("second signal within the interval delivered at once, want it held to the interval's end")
	}
	n.signalNow()
	if !ready() {
		t.Fatal("signalNow within the interval not delivered at once")
	}
	n.mu.Lock()
	pending := n.timer != nil
	n.mu.Unlock()
	if pending {
		t.Error("signalNow left the held wake-up pending; it covers it")
	}
	n.stop()
	n.signalNow()
	if ready() {
		t.Error("signalNow after stop delivered a wake-up")
	}
}
