package engine

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHealLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name  string
		pace  healPacing  // zero: defaultHealPacing
		heals []time.Time // heals recorded, each after asking delay()
		at    time.Time
		want  time.Duration
	}{
		{name: "first heal is immediate", at: t0, want: 0},
		{name: "heals a person spaces out stay immediate", heals: []time.Time{ms(0), ms(2000), ms(4000), ms(6000), ms(8000), ms(10000)}, at: ms(12000), want: 0},
		{name: "a burst of fights is still immediate", heals: []time.Time{ms(0), ms(10), ms(20), ms(30)}, at: ms(40), want: 0},
		{name: "a fight past the burst waits", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40)}, at: ms(50), want: 240 * time.Millisecond},
		{name: "the wait doubles", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40), ms(300)}, at: ms(310), want: 490 * time.Millisecond},
		{name: "the wait is bounded", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40), ms(300), ms(1000), ms(2500), ms(5000), ms(9000), ms(16000), ms(26500), ms(37000)}, at: ms(37000), want: defaultHealPacing.max},
		{name: "quiet resets", heals: []time.Time{ms(0), ms(10), ms(20), ms(30), ms(40)}, at: ms(40 + 1251 + 1000), want: 0},
		{name: "a burst of one waits from the second heal", pace: healPacing{burst: 1, fight: 10 * time.Second, base: 6 * time.Second, max: 6 * time.Second}, heals: []time.Time{ms(0)}, at: ms(100), want: 5900 * time.Millisecond},
		{name: "other pacing: bounded by its max", pace: healPacing{burst: 2, fight: time.Second, base: 50 * time.Millisecond, max: 400 * time.Millisecond}, heals: []time.Time{ms(0), ms(10), ms(100), ms(300), ms(700), ms(1100)}, at: ms(1110), want: 390 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pace := tc.pace
			if pace == (healPacing{}) {
				pace = defaultHealPacing
			}
			var h healLimiter
			for _, at := range tc.heals {
				h.record(pace, at)
			}
			if diff := cmp.Diff(tc.want, h.delay(pace, tc.at)); diff != "" {
				t.Errorf("delay (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOlder: a cache state is skipped only when it is known to be older
// than our last write.
func TestOlder(t *testing.T) {
	tests := []struct {
		live, applied string
		want          bool
	}{
		{live: "99", applied: "100", want: true},
		{live: "100", applied: "100", want: false},
		{live: "101", applied: "100", want: false},
		{live: "99", applied: "", want: false},      // nothing written yet
		{live: "a1", applied: "a2", want: false},    // not numbers: unknown order
		{live: "99", applied: "x100", want: false},  // not numbers: unknown order
		{live: "1000", applied: "999", want: false}, // numbers, not strings
	}
	for _, tc := range tests {
		if got := older(tc.live, tc.applied); got != tc.want {
			t.Errorf("older(%q, %q) = %v, want %v", tc.live, tc.applied, got, tc.want)
		}
	}
}

func TestNotifierCoalesces(t *testing.T) {
	n := newNotifier(50 * time.Millisecond)
	defer n.stop()
	n.signal() // leading edge: at once
	select {
	case <-n.c:
	default:
		t.Fatal("first signal not delivered at once")
	}
	n.signal()
	n.signal()
	select {
	case <-n.c:
		t.Fatal("signal within the interval delivered early")
	default:
	}
	select {
	case <-n.c: // trailing edge
	case <-time.After(time.Second):
		t.Fatal("trailing signal never delivered")
	}
	select {
	case <-n.c:
		t.Fatal("coalesced signals delivered twice")
	case <-time.After(100 * time.Millisecond):
	}
}
