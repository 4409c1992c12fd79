//go:build !unit

package hubclient_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestReconnectStormAfterHubRestart enrols 200 agents (FLOTILLA_STORM_AGENTS
// to change), lets them converge, then pushes a commit and kills the hub
// with SIGKILL. When it starts again on the same state, every agent
// reconnects at once (with the default jittered backoff) and must receive
// the new state and report it Synced, while the hub keeps answering its
// HTTP API. The times and the hub's CPU are logged, not asserted: they are
// recorded in docs/protocol.md.
func TestReconnectStormAfterHubRestart(t *testing.T) {
	n := 200
	if v := os.Getenv("FLOTILLA_STORM_AGENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("FLOTILLA_STORM_AGENTS=%q: %v", v, err)
		}
	}
	// Every simulated cluster enrols from this one address: lift the
	// hub's per-address enrolment limits, as a fleet behind one NAT would.
	f := newFixture(t, "--agent-enroll-rate", "10000", "--agent-enroll-burst", "10000",
		"--agent-max-unauthenticated-conns-per-ip", "8192")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	rssIdle := rssKiB(f.hub.PID())
	start := time.Now()
	agents := make([]*simAgent, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var enrolling sync.WaitGroup
	for i := range agents {
		enrolling.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; enrolling.Done() }()
			a, err := f.enroll(ctx, fmt.Sprintf("sim-%04d", i), hubclient.Options{})
			if err != nil {
				errs <- err
				return
			}
			agents[i] = a
		}()
	}
	enrolling.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d agents enrolled in %s", n, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for _, a := range agents {
		a.run(ctx, &wg)
	}
	rev1, err := f.repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	waitSynced(t, f, rev1, n, 3*time.Minute)
	t.Logf("%d agents Synced at the first revision %s after they started", n, time.Since(start).Round(time.Millisecond))
	rssConnected := rssKiB(f.hub.PID())
	t.Logf("hub RSS %d KiB before any agent, %d KiB with %d connected: %.0f KiB per agent", rssIdle, rssConnected, n, float64(rssConnected-rssIdle)/float64(n))

	// A commit the hub cannot see (it polls hourly, no webhook) until it
	// starts again.
	rev2 := f.commit("v2")
	f.hub.Kill()
	killed := time.Now()
	if err := f.hub.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pid := f.hub.PID()
	ready := time.Now()
	t.Logf("hub ready %s after SIGKILL", ready.Sub(killed).Round(time.Millisecond))
	cpuAtReady, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}

	// Probe the API while the agents come back.
	probeCtx, stopProbe := context.WithCancel(ctx)
	probes := make(chan []time.Duration, 1)
	go func() { probes <- probe(probeCtx, f) }()

	digest := waitSynced(t, f, rev2, n, 3*time.Minute)
	converged := time.Now()
	cpu, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	stopProbe()
	lat := <-probes

	// When each agent got the new bundle and when it was welcomed.
	var got []time.Duration
	for _, a := range agents {
		at, ok := a.engine.acceptedAt(digest)
		if !ok {
			t.Errorf("agent %s never accepted %s", a.name, digest)
			continue
		}
		got = append(got, at.Sub(ready))
		if a.welcomed() < 2 {
			t.Errorf("agent %s was welcomed %d times, want a reconnect", a.name, a.welcomed())
		}
	}
	slices.Sort(got)
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatal("the hub answered no API probe while agents reconnected")
	}
	t.Logf("STORM agents=%d ready_after_kill=%s all_synced_after_ready=%s accept_p50=%s accept_p99=%s accept_max=%s "+
		"hub_cpu_start_to_ready=%s hub_cpu_ready_to_synced=%s hub_rss_kib=%d api_probes=%d api_p50=%s api_max=%s cores=%d",
		n, ready.Sub(killed).Round(time.Millisecond), converged.Sub(ready).Round(time.Millisecond),
		pct(got, 50), pct(got, 99), got[len(got)-1].Round(time.Millisecond),
		cpuAtReady, cpu-cpuAtReady, rssKiB(pid), len(lat), pct(lat, 50), lat[len(lat)-1].Round(time.Millisecond), numCPU())
	// Generous: a hub that stops answering for this long is not responsive.
	if lat[len(lat)-1] > 10*time.Second {
		t.Errorf("an API call took %s during the reconnect storm", lat[len(lat)-1])
	}
}

// waitSynced waits until all n clusters are Synced at rev and returns the
// digest they are at.
func waitSynced(t *testing.T, f *fixture, rev string, n int, timeout time.Duration) string {
	t.Helper()
	var digest string
	err := harness.Eventually(t.Context(), timeout, 100*time.Millisecond, func() error {
		got, d, err := f.synced(t.Context(), rev)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("%d of %d clusters Synced at %s", got, n, rev)
		}
		digest = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// probe lists clusters through the API every 50 ms until ctx ends and
// returns the latencies; failed calls count as 30 s.
func probe(ctx context.Context, f *fixture) []time.Duration {
	var out []time.Duration
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		t0 := time.Now()
		var v any
		err := f.api(ctx, "GET", "/api/v1/clusters", nil, &v)
		if ctx.Err() != nil {
			return out
		}
		d := time.Since(t0)
		if err != nil {
			d = 30 * time.Second
		}
		out = append(out, d)
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100].Round(time.Millisecond)
}
