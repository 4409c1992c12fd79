package agentkeepalive

import (
	"testing"
	"time"
)

func TestOnlyTheAgentPings(t *testing.T) {
	c, s, e := Client(), Server(time.Minute), Enforcement()
	// The hub's ping is due only after the agent's (a quiet connection
	// is read again when the agent pings).
	if s.Time <= c.Time {
		t.Fatalf("hub pings after %s, not after the agent's %s", s.Time, c.Time)
	}
	// The hub accepts the agent's pings, and those of an agent one
	// version older (30 s).
	if e.MinTime > c.Time || e.MinTime > 30*time.Second || !e.PermitWithoutStream || !c.PermitWithoutStream {
		t.Fatalf("enforcement %+v refuses the agent's pings (%+v)", e, c)
	}
	// A dead agent is still found: the hub pings after a bounded quiet time.
	if s.Time <= 0 || s.Timeout <= 0 || s.Time+s.Timeout > 3*time.Minute {
		t.Fatalf("hub finds a dead agent after %s + %s", s.Time, s.Timeout)
	}
	if s.MaxConnectionIdle != time.Minute {
		t.Fatalf("MaxConnectionIdle %s, want the one passed", s.MaxConnectionIdle)
	}
}
