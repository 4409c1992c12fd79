package agentapi

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"
)

func TestPeerLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newPeerLimiter(rate.Every(time.Second), 3)
	l.now = func() time.Time { return now }
	var got []bool
	for range 4 {
		got = append(got, l.allow("10.0.0.1"))
	}
	if d := cmp.Diff([]bool{true, true, true, false}, got); d != "" {
		t.Errorf("burst from one address (-want +got):\n%s", d)
	}
	if !l.allow("10.0.0.2") {
		t.Error("another address was limited with the first")
	}
	now = now.Add(time.Second)
	if !l.allow("10.0.0.1") {
		t.Error("a token did not come back after a second")
	}

	// Full buckets are forgotten when the table is full; while none is,
	// new addresses are refused.
	for i := range maxLimitedPeers - 2 {
		l.peers[string(rune(i))+"x"] = rate.NewLimiter(rate.Every(time.Second), 3)
	}
	for _, lim := range l.peers {
		lim.AllowN(now, 3)
	}
	if l.allow("10.0.0.3") {
		t.Error("a new address was served with the table full of busy ones")
	}
	now = now.Add(time.Minute)
	if !l.allow("10.0.0.3") {
		t.Error("a new address was refused though every bucket had refilled")
	}
	if len(l.peers) != 1 {
		t.Errorf("%d addresses remembered after forgetting the full buckets, want 1", len(l.peers))
	}
}
