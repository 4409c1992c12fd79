//go:build !unit

package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// The five clusters of TestRollout and their waves.
var rolloutWaves = map[string]string{"canary": "canary", "w1a": "wave1", "w1b": "wave1", "w2a": "wave2", "w2b": "wave2"}

const rolloutSoak = 3 * time.Second

// rolloutApp is the app "ro" on every wave, with a progressive rollout:
// canary, then wave1, then wave2, each waiting for Synced and Healthy,
// the first two soaking; approveWave2 adds an approval before wave2.
func rolloutApp(repo string, approveWave2 bool) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: ro}
spec:
  source: {repoURL: %s, targetRevision: main, path: ro}
  destination:
    namespace: ro
    clusterSelector: {matchExpressions: [{key: wave, operator: Exists}]}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
  rollout:
    autoRollback: true
    stepDeadline: 2m
    steps:
    - {name: canary, clusterSelector: {matchLabels: {wave: canary}}, soak: %[2]s}
    - {name: wave1, clusterSelector: {matchLabels: {wave: wave1}}, soak: %[2]s}
    - {name: wave2, clusterSelector: {matchLabels: {wave: wave2}}, approval: %[3]t}
`, repo, rolloutSoak, approveWave2)
}

// roFiles is release rel of the app: a Deployment and a ConfigMap; a bad
// release's Deployment can never run (no node matches its selector) and
// turns Degraded once its progress deadline passes.
func roFiles(rel string, bad bool) map[string]string {
	dep := deployment("ro", 1, "nginx:1.27")
	if bad {
		dep = strings.Replace(dep, "spec:\n  replicas: 1", "spec:\n  progressDeadlineSeconds: 3\n  replicas: 1", 1)
		dep = strings.Replace(dep, "    spec:\n      containers:", "    spec:\n      nodeSelector: {flotilla.dev/no-such-node: \"true\"}\n      containers:", 1)
	}
	return map[string]string{"ro/deployment.yaml": dep, "ro/config.yaml": cmManifest("ro", map[string]string{"release": rel})}
}

// rolloutView is `flotilla rollout status ro -o json`.
func (e *env) rolloutView() (api.RolloutView, error) {
	var v api.RolloutView
	out, err := e.hub.CLI(e.t.Context(), "rollout", "status", "ro", "-o", "json")
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal([]byte(out), &v)
}

func (e *env) waitRollout(what string, cond func(api.RolloutView) error) api.RolloutView {
	e.t.Helper()
	var last api.RolloutView
	e.eventually("rollout of ro: "+what, func() error {
		v, err := e.rolloutView()
		if err != nil {
			return err
		}
		last = v
		return cond(v)
	})
	return last
}

func phaseIs(phase, to string) func(api.RolloutView) error {
	return func(v api.RolloutView) error {
		if v.Phase != phase || v.To != to {
			return fmt.Errorf("phase %s to %s (step %d: %s)", v.Phase, v.To, v.CurrentStep, v.Reason)
		}
		return nil
	}
}

// applies returns, per cluster, the agent's applies of ro at rev (their
// history entries, the hub's own rollout entries left out), oldest first.
func (e *env) applies(rev string) map[string][]api.HistoryEntry {
	e.t.Helper()
	var hist []api.HistoryEntry
	if err := e.hub.DoJSON(e.t.Context(), "GET", "/api/v1/apps/ro/history?limit=1000", nil, &struct {
		Items *[]api.HistoryEntry `json:"items"`
	}{&hist}); err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]api.HistoryEntry{}
	for _, h := range hist {
		if h.Revision == rev && h.InitiatedBy != "rollout" {
			out[h.Cluster] = append(out[h.Cluster], h)
		}
	}
	for _, hs := range out {
		sort.Slice(hs, func(i, j int) bool { return hs[i].StartedAt.Before(hs[j].StartedAt) })
	}
	return out
}

func (e *env) releaseOn(cl string) string {
	d, err := e.configMapData(cl, "ro", "ro")
	if err != nil || d == nil {
		return ""
	}
	return d["release"]
}

// TestRollout: five real clusters labelled wave=canary|wave1|wave2. A
// commit reaches the canary first, wave1 only after the canary is Healthy
// and soaked, then wave2, as the times of the agents' applies show; the
// CLI pauses, resumes, approves, aborts and retries; a commit whose
// Deployment never becomes Healthy halts after the canary, which goes back
// to the previous revision, and wave1 and wave2 never get it.
func TestRollout(t *testing.T) {
	parallel(t)
	names := []string{"canary", "w1a", "w1b", "w2a", "w2b"}
	e := newEnv(t, names...)
	e.startHub(hubDefaults())
	for _, n := range names {
		e.enroll(n, "wave="+rolloutWaves[n])
	}
	for _, n := range names {
		e.waitConnected(e.hub, n, true)
	}
	v1 := e.commit("ro v1", roFiles("v1", false))
	e.writeApp("ro", rolloutApp(e.repo.URL, false))
	e.waitSynced("ro", v1, names...) // a first revision goes everywhere at once

	t.Run("Waves", func(t *testing.T) {
		e := e.sub(t)
		v2 := e.commit("ro v2", roFiles("v2", false))
		v := e.waitRollout("completed", phaseIs("Completed", v2))
		e.waitSynced("ro", v2, names...)
		ap := e.applies(v2)
		first := func(cl string) api.HistoryEntry {
			if len(ap[cl]) == 0 {
				t.Fatalf("%s never applied %s: %v", cl, v2[:12], ap)
			}
			return ap[cl][0]
		}
		canary := first("canary")
		wave1 := []api.HistoryEntry{first("w1a"), first("w1b")}
		wave2 := []api.HistoryEntry{first("w2a"), first("w2b")}
		for _, h := range wave1 {
			t.Logf("applies of %s: canary %s–%s, %s %s", v2[:12], canary.StartedAt.Format(time.RFC3339Nano), canary.FinishedAt.Format(time.RFC3339Nano), h.Cluster, h.StartedAt.Format(time.RFC3339Nano))
			if !h.StartedAt.After(canary.FinishedAt) {
				t.Errorf("%s applied %s at %s, before the canary finished applying at %s", h.Cluster, v2[:12], h.StartedAt, canary.FinishedAt)
			}
			// The canary's step was Healthy, then soaked, before wave1 started.
			s1 := v.Steps[0]
			if s1.DoneAt.Sub(s1.HealthyAt) < rolloutSoak || h.StartedAt.Before(s1.DoneAt) {
				t.Errorf("%s applied at %s; the canary step was Healthy at %s and done at %s (soak %s)", h.Cluster, h.StartedAt, s1.HealthyAt, s1.DoneAt, rolloutSoak)
			}
			for _, h2 := range wave2 {
				if !h2.StartedAt.After(h.FinishedAt) || h2.StartedAt.Before(v.Steps[1].DoneAt) {
					t.Errorf("%s applied %s at %s, before wave1's %s finished at %s or its soak ended at %s", h2.Cluster, v2[:12], h2.StartedAt, h.Cluster, h.FinishedAt, v.Steps[1].DoneAt)
				}
			}
		}
		t.Logf("flotilla rollout status ro:\n%s", e.cli("rollout", "status", "ro"))
	})

	t.Run("PauseResumeApprove", func(t *testing.T) {
		e := e.sub(t)
		e.writeApp("ro", rolloutApp(e.repo.URL, true))
		e.cli("refresh")
		v3 := e.commit("ro v3", roFiles("v3", false))
		e.waitRollout("at the canary", func(v api.RolloutView) error {
			if v.To != v3 || v.CurrentStep != 1 || v.Phase != "Progressing" {
				return fmt.Errorf("to %s step %d %s", v.To, v.CurrentStep, v.Phase)
			}
			return nil
		})
		e.cli("rollout", "pause", "ro")
		// Paused: the canary is updated and its soak passes, and wave1
		// still waits with the previous revision.
		e.eventually("canary at v3", func() error {
			if r := e.releaseOn("canary"); r != "v3" {
				return fmt.Errorf("canary release %q", r)
			}
			return nil
		})
		v := e.waitRollout("canary soaked while paused", func(v api.RolloutView) error {
			s := v.Steps[0]
			if !v.Paused || s.HealthyAt.IsZero() || time.Since(s.HealthyAt) < 2*rolloutSoak {
				return fmt.Errorf("paused %v, canary Healthy at %v", v.Paused, s.HealthyAt)
			}
			return nil
		})
		if v.CurrentStep != 1 {
			t.Fatalf("a paused rollout moved to step %d", v.CurrentStep)
		}
		a, err := e.hub.App(e.t.Context(), "ro")
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range []string{"w1a", "w2a"} {
			c := a.Cluster(cl)
			if c.Revision == v3 || !strings.HasPrefix(c.Rollout, "waiting for step") || c.Sync != "Synced" {
				t.Errorf("%s while paused: revision %s, rollout %q, sync %s; want the previous revision, waiting, Synced", cl, c.Revision, c.Rollout, c.Sync)
			}
			if r := e.releaseOn(cl); r != "v2" {
				t.Errorf("%s runs release %q while paused, want v2", cl, r)
			}
		}
		e.cli("rollout", "resume", "ro")
		e.waitRollout("waiting for approval of wave2", phaseIs("WaitingApproval", v3))
		for _, cl := range []string{"w2a", "w2b"} {
			if r := e.releaseOn(cl); r != "v2" {
				t.Errorf("%s runs release %q before the approval, want v2", cl, r)
			}
		}
		out := e.cli("rollout", "approve", "ro")
		t.Logf("flotilla rollout approve ro:\n%s", out)
		e.waitRollout("completed", phaseIs("Completed", v3))
		e.waitSynced("ro", v3, names...)
	})

	t.Run("AbortRetry", func(t *testing.T) {
		e := e.sub(t)
		e.writeApp("ro", rolloutApp(e.repo.URL, false))
		e.cli("refresh")
		v4 := e.commit("ro v4", roFiles("v4", false))
		e.eventually("canary at v4", func() error {
			if r := e.releaseOn("canary"); r != "v4" {
				return fmt.Errorf("canary release %q", r)
			}
			return nil
		})
		e.cli("rollout", "abort", "ro")
		e.waitRollout("aborted", phaseIs("Aborted", v4))
		e.eventually("canary back at v3", func() error {
			if r := e.releaseOn("canary"); r != "v3" {
				return fmt.Errorf("canary release %q", r)
			}
			return nil
		})
		e.cli("rollout", "retry", "ro")
		e.waitRollout("completed after retry", phaseIs("Completed", v4))
		e.waitSynced("ro", v4, names...)
	})

	t.Run("HaltAndRollBack", func(t *testing.T) {
		e := e.sub(t)
		prev, err := e.rolloutView()
		if err != nil {
			t.Fatal(err)
		}
		bad := e.commit("ro v5 (never Healthy)", roFiles("v5", true))
		v := e.waitRollout("halted", phaseIs("Halted", bad))
		t.Logf("halted: %s", v.Reason)
		if !v.RolledBack || v.CurrentStep != 1 {
			t.Errorf("halted at step %d, rolled back %v; want step 1 and rolled back", v.CurrentStep, v.RolledBack)
		}
		e.waitApp("ro", "every cluster back at "+prev.To[:12], func(a api.AppView) error {
			for _, n := range names {
				c := a.Cluster(n)
				if c == nil || c.Revision != prev.To || c.Sync != "Synced" || c.Health != "Healthy" {
					return fmt.Errorf("%s: %+v", n, c)
				}
			}
			return nil
		})
		for _, cl := range names {
			if r := e.releaseOn(cl); r != "v4" {
				t.Errorf("%s runs release %q after the rollback, want v4", cl, r)
			}
		}
		ap := e.applies(bad)
		if len(ap["canary"]) == 0 {
			t.Errorf("the canary never applied the bad revision: %v", ap)
		}
		var got []string
		for cl := range ap {
			got = append(got, cl)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"canary"}) {
			t.Errorf("clusters that applied the bad revision: %v, want only the canary", got)
		}
		out := e.cli("rollout", "status", "ro")
		t.Logf("flotilla rollout status ro:\n%s", out)
		if !strings.Contains(out, "Halted") {
			t.Errorf("rollout status does not say Halted:\n%s", out)
		}
	})
}
