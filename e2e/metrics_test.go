//go:build !unit

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestMetrics: one cluster and its agent; an app with selfHeal syncs, one
// out-of-band scale is reverted; the agent's /metrics shows the sync, the
// drift, the self-heal, its managed objects and the app's status, and the
// hub's /metrics shows the connected agent, the bundle pushed and the
// app's status on the cluster.
func TestMetrics(t *testing.T) {
	parallel(t)
	const cl = "solo"
	e := newEnv(t, cl)
	e.startHub(hubDefaults())
	agent := e.enroll(cl, "env=test")
	e.waitConnected(e.hub, cl, true)
	if agent.MetricsURL == "" {
		t.Fatal("the harness gave the agent no metrics address")
	}

	rev := e.commit("metrics v1", map[string]string{
		"metrics/deployment.yaml": deployment("metrics", 2, "nginx:1.27"),
		"metrics/service.yaml":    service("metrics"),
	})
	e.writeApp("metrics", appSpec{name: "metrics", path: "metrics", ns: "metrics", clusters: []string{cl}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("metrics", rev, cl)
	e.waitDeployment(cl, "metrics", "metrics", 2, true)

	// One drift, healed. The agent may see the change in more than one
	// event (the scale, then the controllers' follow-up writes), so the
	// counters are at least one.
	e.kubectl(cl, "-n", "metrics", "scale", "deployment/metrics", "--replicas=4")
	e.waitDeployment(cl, "metrics", "metrics", 2, false)
	e.waitSynced("metrics", rev, cl)

	e.eventually("agent metrics", func() error {
		m, err := scrape(e.t.Context(), agent.MetricsURL+"/metrics")
		if err != nil {
			return err
		}
		return expect(m, map[string]check{
			`flotilla_agent_drift_events_total`:                                atLeast(1),
			`flotilla_agent_self_heal_total`:                                   atLeast(1),
			`flotilla_agent_sync_total{result="succeeded"}`:                    atLeast(1),
			`flotilla_agent_sync_total{result="failed"}`:                       eq(0),
			`flotilla_agent_apply_duration_seconds_count`:                      atLeast(1),
			`flotilla_agent_managed_objects`:                                   eq(2),
			`flotilla_agent_app_sync_status{app="metrics",status="Synced"}`:    eq(1),
			`flotilla_agent_app_health_status{app="metrics",status="Healthy"}`: eq(1),
			`flotilla_agent_connected`:                                         eq(1),
		})
	})
	e.eventually("hub metrics", func() error {
		m, err := scrapeWithToken(e.t.Context(), e.hub.HTTPURL+"/metrics", e.hub.Token)
		if err != nil {
			return err
		}
		return expect(m, map[string]check{
			`flotilla_hub_connected_agents`:                                             eq(1),
			`flotilla_hub_bundle_pushes_total`:                                          atLeast(1),
			`flotilla_app_sync_status{app="metrics",cluster="solo",status="Synced"}`:    eq(1),
			`flotilla_app_health_status{app="metrics",cluster="solo",status="Healthy"}`: eq(1),
		})
	})
}

type check func(float64) bool

func eq(want float64) check     { return func(v float64) bool { return v == want } }
func atLeast(min float64) check { return func(v float64) bool { return v >= min } }

// expect checks that each series is present with a value cond accepts.
func expect(got map[string]float64, want map[string]check) error {
	var bad []string
	for series, cond := range want {
		v, ok := got[series]
		switch {
		case !ok:
			bad = append(bad, series+" missing")
		case !cond(v):
			bad = append(bad, fmt.Sprintf("%s = %g", series, v))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unexpected metrics: %s", strings.Join(bad, "; "))
	}
	return nil
}

// scrape reads a Prometheus text exposition into series → value, the
// series spelled as exposed (labels in the exposer's order).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	return scrapeWithToken(ctx, url, "")
}

// scrapeWithToken is scrape with a bearer token (the hub's /metrics needs
// one).
func scrapeWithToken(ctx context.Context, url, token string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("GET %s: bad line %q", url, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("GET %s: bad value in %q: %w", url, line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return out, nil
}
