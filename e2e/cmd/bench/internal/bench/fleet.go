package bench

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/e2e/cmd/agentsim/simstats"
	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// agentsimBinary returns the agentsim binary, built into the phase's
// folder unless --agentsim names one.
func (b *Bench) agentsimBinary(ctx context.Context, w *world) (string, error) {
	if b.cfg.AgentsimBin != "" {
		return b.cfg.AgentsimBin, nil
	}
	bin := filepath.Join(w.dir, "agentsim")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./e2e/cmd/agentsim").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build agentsim (run from the repository root): %w: %s", err, out)
	}
	return bin, nil
}

// startSims starts agentsim processes for clusters prefix-0 … prefix-(n-1)
// labelled label, and waits until every agent is connected.
func (b *Bench) startSims(ctx context.Context, w *world, hub *harness.Hub, bin, prefix, label string, n int) ([]*simProc, error) {
	var procs []*simProc
	for first := 0; first < n; first += b.cfg.PerSimProc {
		ctl, err := harness.FreeAddr()
		if err != nil {
			return nil, err
		}
		p, err := harness.StartProc(fmt.Sprintf("agentsim-%s-%d", prefix, len(procs)), w.dir, bin, []string{
			"--hub-api", hub.HTTPURL, "--admin-token", hub.Token, "--prefix", prefix, "--first", strconv.Itoa(first),
			"--count", strconv.Itoa(min(b.cfg.PerSimProc, n-first)), "--label", label, "--parallel", "16", "--control-listen", ctl,
		}, nil)
		if err != nil {
			return nil, err
		}
		w.stops = append(w.stops, p.Stop)
		procs = append(procs, &simProc{Proc: p, control: ctl})
	}
	return procs, waitJoined(ctx, procs, n)
}

// fleet measures the fleet-scale rows after the CNOE benchmark of Argo CD:
// many small apps spread over 500 simulated agents, one commit that
// changes every app, until every app is Synced on its cluster.
func (b *Bench) fleet(ctx context.Context) error {
	w, err := b.newWorld("fleet")
	if err != nil {
		return err
	}
	defer w.close()
	bin, err := b.agentsimBinary(ctx, w)
	if err != nil {
		return err
	}
	repo, err := w.repo("config")
	if err != nil {
		return err
	}
	const src = "apps/src/fleet"
	if _, _, err := commit(repo, "fleet source", map[string]string{
		"apps/defs/README.md":   "Application definitions.\n",
		src + "/configmap.yaml": configMap("fleet-config", "0"),
	}); err != nil {
		return err
	}
	hub, err := w.hub(ctx, repo, time.Hour)
	if err != nil {
		return err
	}
	nAgents := b.cfg.FleetAgents
	t := time.Now()
	procs, err := b.startSims(ctx, w, hub, bin, "fleet", "fleet=true", nAgents)
	if err != nil {
		return err
	}
	b.logf("%d simulated agents connected in %s", nAgents, time.Since(t).Round(100*time.Millisecond))
	var details strings.Builder
	fmt.Fprintf(&details, `After the CNOE benchmark of Argo CD (10,000 and 50,000 small apps over 500 clusters). One hub
(`+"`--resync 30s`"+`), %d simulated agents (e2e/cmd/agentsim: real registration, enrolment and mTLS stream
each; an in-memory engine that reports every bundle Synced and Healthy at once). Every app is one
Application definition in the app-of-apps folder, naming one cluster (app i on cluster i mod %d, so each
agent carries apps ÷ agents of them) and its own namespace; all apps share one source folder (a ConfigMap), so
one commit changes every app's bundle. The apps are first added by one commit (not a row; the time is
shown), then one commit changes the shared ConfigMap and is followed by a webhook: "agents" = the last
(agent, app) Synced status sent by the simulated agents, "hub" = the hub's API showed every app Synced at
the new digest (polled; at this size one poll of the whole app list takes a noticeable time itself).

`, nAgents, nAgents)
	prev := 0
	for _, nApps := range b.cfg.FleetApps {
		files := map[string]string{}
		for i := prev; i < nApps; i++ {
			name := fleetApp(i)
			files["apps/defs/"+name+".yaml"] = appDef(name, repo.URL, src, name, toClusters(fmt.Sprintf("fleet-%d", i%nAgents)), false)
		}
		rev, _, err := commit(repo, fmt.Sprintf("fleet: %d apps", nApps), files)
		if err != nil {
			return err
		}
		names := make([]string, nApps)
		for i := range names {
			names[i] = fleetApp(i)
		}
		timeout := max(5*time.Minute, time.Duration(nApps)*20*time.Millisecond)
		interval := max(100*time.Millisecond, time.Duration(nApps)*20*time.Microsecond)
		t0, err := b.webhook(ctx, hub, repo.URL, rev)
		if err != nil {
			return err
		}
		at, err := waitApps(ctx, hub, timeout, interval, everySynced(names, rev, nil))
		if err != nil {
			return fmt.Errorf("fleet: adding apps up to %d: %w", nApps, err)
		}
		added := at.Sub(t0)
		b.logf("fleet: %d new apps (of %d) Synced on %d agents in %s", nApps-prev, nApps, nAgents, secs(added))
		prev = nApps

		apps, err := listApps(ctx, hub)
		if err != nil {
			return err
		}
		old := map[string]string{}
		for _, n := range names {
			if d := digests(apps, n); len(d) == 1 {
				for _, v := range d {
					old[n] = v
				}
			}
		}
		row := rowFleet10k
		if nApps > 10000 {
			row = rowFleet50k
		}
		stop := b.cpuProfile(ctx, hub.Proc, fmt.Sprintf("fleet%d-hub", nApps), row)
		u0, err := hub.Usage()
		if err != nil {
			return err
		}
		rev, _, err = commit(repo, fmt.Sprintf("fleet: change all %d apps", nApps), map[string]string{src + "/configmap.yaml": configMap("fleet-config", strconv.Itoa(nApps))})
		if err != nil {
			return err
		}
		t0, err = b.webhook(ctx, hub, repo.URL, rev)
		if err != nil {
			return err
		}
		var s simstats.Stats
		err = harness.Eventually(ctx, timeout, interval, func() error {
			s, err = fleetQuery(ctx, procs, url.Values{"prefix": {"fl-"}, "revision": {rev}})
			if err != nil {
				return err
			}
			if s.Reported < nApps {
				return fmt.Errorf("%d/%d apps reported Synced at %s by the agents", s.Reported, nApps, short(rev))
			}
			return nil
		})
		if err != nil {
			stop()
			return fmt.Errorf("fleet: change of %d apps: %w", nApps, err)
		}
		agentT := time.Unix(0, s.LastSent).Sub(t0)
		at, err = waitApps(ctx, hub, timeout, interval, everySynced(names, rev, old))
		stop()
		if err != nil {
			return fmt.Errorf("fleet: change of %d apps: hub: %w", nApps, err)
		}
		hubT := at.Sub(t0)
		u1, err := hub.Usage()
		if err != nil {
			return err
		}
		goal := time.Minute
		if row == rowFleet50k {
			goal = 5 * time.Minute
		}
		b.row(row).Figure = fmt.Sprintf("fleet scale: %d apps over %d simulated agents, one commit → all Synced", nApps, nAgents)
		b.set(row, fmt.Sprintf("hub %s, agents %s (hub CPU %s + %s in its exited children; hub RSS %s; adding the apps took %s)",
			secs(hubT), secs(agentT), secs(u1.CPU-u0.CPU), secs(u1.ChildCPU-u0.ChildCPU), mib(u1.RSS), secs(added)), hubT < goal)
		fmt.Fprintf(&details, `- **%d apps** (%d per agent): added in %s; the change: agents %s, hub %s; hub CPU %s (+ %s in exited children: git, render workers), hub RSS %s after it.
`, nApps, nApps/nAgents, secs(added), secs(agentT), secs(hubT), secs(u1.CPU-u0.CPU), secs(u1.ChildCPU-u0.ChildCPU), mib(u1.RSS))
	}
	b.detail("Fleet scale", details.String())
	return nil
}

func fleetApp(i int) string { return fmt.Sprintf("fl-%05d", i) }

// everySynced is a condition: every app in names is at rev and Synced on
// each of its clusters, at a digest other than old's (app → digest; nil:
// any digest).
func everySynced(names []string, rev string, old map[string]string) func(map[string]api.AppView) error {
	return func(apps map[string]api.AppView) error {
		done := 0
		var first string
		for _, name := range names {
			a, ok := apps[name]
			ok = ok && a.Revision == rev && len(a.Clusters) > 0
			if ok {
				for _, c := range a.Clusters {
					if c.Sync != "Synced" || c.Digest == "" || (old != nil && c.Digest == old[name]) {
						ok = false
					}
				}
			}
			if ok {
				done++
			} else if first == "" {
				first = fmt.Sprintf("%s at %s: %+v %s", name, short(a.Revision), a.Sync, a.Error)
			}
		}
		if done != len(names) {
			return fmt.Errorf("%d/%d apps Synced at %s (first not: %s)", done, len(names), short(rev), first)
		}
		return nil
	}
}

// waitJoined waits until procs' simulated agents, n in all, are connected,
// failing at once when one could not join. It allows 200 ms per agent:
// through three Kubernetes-store replicas on this 2-core host agents join
// at 6-10 per second (registration, enrolment and connection each write
// the API server), so 60 ms cut a healthy join of 2,000 off after 1,464.
func waitJoined(ctx context.Context, procs []*simProc, n int) error {
	return harness.Eventually(ctx, 2*time.Minute+time.Duration(n)*200*time.Millisecond, 250*time.Millisecond, func() error {
		s, err := fleetStats(ctx, procs, "", "")
		if err != nil {
			return err
		}
		if s.Failed > 0 {
			return fmt.Errorf("%d agents failed to join: %s", s.Failed, s.FirstErr)
		}
		if s.Connected < n {
			return fmt.Errorf("%d/%d agents connected (%d enrolled) %s", s.Connected, n, s.Enrolled, s.FirstErr)
		}
		return nil
	})
}
