//go:build !unit

package hubclient_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
	"github.com/flotilla-cd/flotilla/agent/internal/identity"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestReconnectNeverGivesUp: an agent that starts while the hub is down
// keeps trying, with growing jittered waits, and connects when the hub
// comes back.
func TestReconnectNeverGivesUp(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	a, err := f.enroll(ctx, "patient", hubclient.Options{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.hub.Kill()
	a.run(ctx, &wg)
	// Forty failed attempts: far more than a give-up would allow.
	err = harness.Eventually(ctx, 2*time.Minute, 50*time.Millisecond, func() error {
		if n := len(a.ended()); n < 40 {
			return fmt.Errorf("%d attempts", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	downs := a.ended()
	var gaps []time.Duration
	for i := 1; i < len(downs); i++ {
		gaps = append(gaps, downs[i].Sub(downs[i-1]).Round(time.Millisecond))
	}
	t.Logf("waits between attempts while the hub was down: %v", gaps)
	if a.welcomed() != 0 {
		t.Fatalf("welcomed %d times by a hub that is down", a.welcomed())
	}
	if err := f.hub.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	rev, err := f.repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	waitSynced(t, f, rev, 1, time.Minute)
}

// TestRemoveAndReenrolCloseTheStream: `flotilla cluster remove` (the HTTP
// API) and a re-enrolment end the agent's open stream at once, and the old
// certificate cannot connect again.
func TestRemoveAndReenrolCloseTheStream(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	opts := hubclient.Options{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	removed, err := f.enroll(ctx, "removed", opts)
	if err != nil {
		t.Fatal(err)
	}
	replaced, err := f.enroll(ctx, "replaced", opts)
	if err != nil {
		t.Fatal(err)
	}
	removed.run(ctx, &wg)
	replaced.run(ctx, &wg)
	rev, err := f.repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	waitSynced(t, f, rev, 2, time.Minute)

	start := time.Now()
	if err := f.api(ctx, "DELETE", "/api/v1/clusters/removed", nil, nil); err != nil {
		t.Fatal(err)
	}
	var j harness.Join
	if err := f.api(ctx, "POST", "/api/v1/clusters/replaced/token", nil, &j); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.Enroll(ctx, identity.EnrollOptions{HubAddr: j.HubAddr, Cluster: "replaced", Token: j.Token, CAHash: j.CAHash}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*simAgent{removed, replaced} {
		// The stream ended, then at least ten reconnects were refused.
		err := harness.Eventually(ctx, time.Minute, 20*time.Millisecond, func() error {
			if n := len(a.ended()); n < 11 {
				return fmt.Errorf("agent %s: %d sessions ended", a.name, n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("agent %s: stream closed %s after the change", a.name, a.ended()[0].Sub(start).Round(time.Millisecond))
		if a.welcomed() != 1 {
			t.Errorf("agent %s welcomed %d times; its old certificate must not connect again", a.name, a.welcomed())
		}
	}
}
