package ha

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
)

// An overloaded API server (slow: no answer for longer than StoreTimeout)
// that still renews the replica's heartbeat must not make the replica drop
// its agents' streams (they would reconnect to the other replicas, adding
// to the load); readiness fails, so new streams go elsewhere. Only a
// heartbeat not renewed within its TTL (a real loss: the others count the
// agents as gone) closes them, every one.
func TestGuardClosesStreamsOnlyOnLoss(t *testing.T) {
	f := fleet.New()
	r := &Replica{
		opts: Options{HeartbeatInterval: time.Second, RetryPeriod: 100 * time.Millisecond, StoreTimeout: 200 * time.Millisecond},
		d:    Deps{Fleet: f}, log: hclog.NewNullLogger(),
	}
	r.synced.Store(true)
	var sessions []*fleet.Session
	for i := range 50 {
		sessions = append(sessions, f.Attach(fmt.Sprintf("c%02d", i), nil))
	}
	r.renewed(time.Now())
	r.lastOK.Store(time.Now().Add(-time.Hour).UnixNano()) // overloaded: no recent answer
	if err := r.Ready(); err == nil {
		t.Error("Ready with no answer from the API server for an hour: nil, want an error (new streams go elsewhere)")
	}
	if !r.guardOnce(t.Context(), true) {
		t.Error("guard: not serving while the heartbeat is fresh")
	}
	if n := len(f.Sessions()); n != 50 {
		t.Fatalf("%d of 50 streams left while the heartbeat is fresh, want all", n)
	}

	r.lastRenew.Store(time.Now().Add(-r.heartbeatTTL() - time.Second).UnixNano())
	if r.guardOnce(t.Context(), true) {
		t.Error("guard: serving with an expired heartbeat")
	}
	if n := len(f.Sessions()); n != 0 {
		t.Fatalf("%d streams left after the heartbeat expired, want none", n)
	}
	for _, s := range sessions {
		if !errors.Is(s.Cause(), ErrStoreLost) {
			t.Fatalf("stream closed with %v, want ErrStoreLost", s.Cause())
		}
	}
}
