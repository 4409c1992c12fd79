package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// simProc is one agentsim process.
type simProc struct {
	*harness.Proc
	control string
}

var simClient = &http.Client{Timeout: 30 * time.Second}

// fleetStats sums the stats of every agentsim process for app at rev.
func fleetStats(ctx context.Context, procs []*simProc, app, rev string) (simstats.Stats, error) {
	return fleetQuery(ctx, procs, url.Values{"app": {app}, "revision": {rev}})
}

// fleetQuery sums the stats of every agentsim process for query q (app or
// prefix, and revision).
func fleetQuery(ctx context.Context, procs []*simProc, q url.Values) (simstats.Stats, error) {
	var sum simstats.Stats
	for _, p := range procs {
		if done, err := p.Exited(); done {
			return sum, fmt.Errorf("agentsim %s exited: %v\n%s", p.Name, err, p.Tail(2000))
		}
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+p.control+"/stats?"+q.Encode(), nil)
		if err != nil {
			return sum, err
		}
		resp, err := simClient.Do(req)
		if err != nil {
			return sum, err
		}
		var s simstats.Stats
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil {
			return sum, err
		}
		sum.Agents += s.Agents
		sum.Enrolled += s.Enrolled
		sum.Failed += s.Failed
		sum.EnrolRetries += s.EnrolRetries
		sum.Connected += s.Connected
		sum.Sessions += s.Sessions
		sum.Holding += s.Holding
		sum.Reported += s.Reported
		if sum.FirstErr == "" {
			sum.FirstErr = s.FirstErr
		}
		if s.FirstRecv != 0 && (sum.FirstRecv == 0 || s.FirstRecv < sum.FirstRecv) {
			sum.FirstRecv = s.FirstRecv
		}
		sum.LastRecv = max(sum.LastRecv, s.LastRecv)
		sum.LastSent = max(sum.LastSent, s.LastSent)
	}
	return sum, nil
}

// fanout connects 1,000 then 10,000 simulated agents (real mTLS streams,
// in a few agentsim processes) to one hub and measures commit → every
// agent Synced, and the hub's CPU and memory per agent.
func (b *Bench) fanout(ctx context.Context) error {
	w, err := b.newWorld("fanout")
	if err != nil {
		return err
	}
	defer w.close()
	bin := b.cfg.AgentsimBin
	if bin == "" {
		bin = filepath.Join(w.dir, "agentsim")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./e2e/cmd/agentsim").CombinedOutput()
		if err != nil {
			return fmt.Errorf("build agentsim (run from the repository root): %w: %s", err, out)
		}
	}
	repo, err := w.repo("config")
	if err != nil {
		return err
	}
	const app = "fan"
	rev, _, err := commit(repo, "fan app", merge(under("apps/src/"+app, webApp(app, 2, "0")), map[string]string{
		"apps/defs/" + app + ".yaml": appDef(app, repo.URL, "apps/src/"+app, app, toSelector("sim", "true"), true),
	}))
	if err != nil {
		return err
	}
	hub, err := w.hub(ctx, repo, time.Hour)
	if err != nil {
		return err
	}
	if _, err := waitApps(ctx, hub, time.Minute, 100*time.Millisecond, func(apps map[string]api.AppView) error {
		if _, ok := apps[app]; !ok {
			return fmt.Errorf("app %s not loaded", app)
		}
		return nil
	}); err != nil {
		return err
	}
	base, err := settledUsage(ctx, hub.Proc, 3*time.Second)
	if err != nil {
		return err
	}
	b.logf("hub with no agents: RSS %s", mib(base.RSS))

	var procs []*simProc
	total := 0
	var details strings.Builder
	fmt.Fprintf(&details, `One hub (`+"`--resync 30s`"+`, one app selecting every simulated cluster: a Deployment, a Service and a
ConfigMap). Simulated agents run in agentsim processes (at most %d per process), each agent with its own
cluster registration (`+"`POST /api/v1/clusters`"+`), its own join token and key, enrolment over TLS pinned to
the CA hash, and its own mTLS gRPC stream (own TCP connection) to the hub; its engine accepts each bundle and
reports Synced and Healthy at once, so the figures are the hub's and the protocol's. A commit changes the
ConfigMap and is followed by a webhook. "Agents" = the last simulated agent sent its Synced status (read from
the agentsim processes, exact); "hub" = the hub's API showed every cluster Synced (polled after that, so within
one poll of the API, which at 10,000 clusters takes a noticeable part of the time itself). Hub CPU is
utime+stime from /proc over each commit; memory per agent is (hub RSS with N agents connected − hub RSS
with none, %s) / N.

`, b.cfg.PerSimProc, mib(base.RSS))
	for idx, n := range b.cfg.Fanout {
		added := n - total
		stopJoin := b.cpuProfile(ctx, hub.Proc, fmt.Sprintf("fanout%d-join-hub", n), rowConnected)
		t0 := time.Now()
		cpu0, err := hub.Usage()
		if err != nil {
			return err
		}
		for first := total; first < n; first += b.cfg.PerSimProc {
			count := min(b.cfg.PerSimProc, n-first)
			ctl, err := harness.FreeAddr()
			if err != nil {
				return err
			}
			p, err := harness.StartProc(fmt.Sprintf("agentsim-%d", len(procs)), w.dir, bin, []string{
				"--hub-api", hub.HTTPURL, "--admin-token", hub.Token, "--prefix", "sim", "--first", strconv.Itoa(first),
				"--count", strconv.Itoa(count), "--label", "sim=true", "--parallel", "16", "--control-listen", ctl,
			}, nil)
			if err != nil {
				return err
			}
			w.stops = append(w.stops, p.Stop)
			procs = append(procs, &simProc{Proc: p, control: ctl})
		}
		total = n
		b.logf("%d simulated agents registering, enrolling and connecting", n)
		var last simstats.Stats
		err = harness.Eventually(ctx, 2*time.Minute+time.Duration(n)*200*time.Millisecond, 250*time.Millisecond, func() error {
			s, err := fleetStats(ctx, procs, app, "")
			if err != nil {
				return err
			}
			last = s
			if s.Failed > 0 {
				return fmt.Errorf("%d agents failed to join: %s", s.Failed, s.FirstErr)
			}
			if s.Connected < n {
				return fmt.Errorf("%d/%d agents connected (%d enrolled) %s", s.Connected, n, s.Enrolled, s.FirstErr)
			}
			return nil
		})
		if err != nil {
			b.set(rowConnected, fmt.Sprintf("%d of %d connected (%d failed: %s)", last.Connected, n, last.Failed, last.FirstErr), false)
			return err
		}
		joinTook := time.Since(t0)
		stopJoin()
		// Every agent got the current bundle.
		if _, err := waitApps(ctx, hub, 5*time.Minute, time.Second, syncedAt(app, rev, n, nil)); err != nil {
			return fmt.Errorf("initial fan-out to %d: %w", n, err)
		}
		cpu1, err := hub.Usage()
		if err != nil {
			return err
		}
		connected, err := hubConnected(ctx, hub)
		if err != nil {
			return err
		}
		u, err := settledUsage(ctx, hub.Proc, 5*time.Second)
		if err != nil {
			return err
		}
		perAgent := float64(u.RSS-base.RSS) / float64(n)
		b.logf("%d agents joined in %s (hub CPU %s); hub sees %d connected; hub RSS %s, %.1f KiB per agent",
			n, joinTook.Round(time.Second), (cpu1.CPU - cpu0.CPU).Round(10*time.Millisecond), connected, mib(u.RSS), perAgent/1024)

		b.heapProfile(ctx, hub.Proc, fmt.Sprintf("fanout%d-hub", n), rowHubPerAg)
		fanRow := rowFan1k
		if n >= 10000 {
			fanRow = rowFan10k
		}
		stopCommits := b.cpuProfile(ctx, hub.Proc, fmt.Sprintf("fanout%d-commits-hub", n), fanRow)
		var agentT, hubT samples
		var cpus []time.Duration
		for i := range b.cfg.FanCommits[idx] {
			apps, err := listApps(ctx, hub)
			if err != nil {
				return err
			}
			old := digests(apps, app)
			before, err := hub.Usage()
			if err != nil {
				return err
			}
			r, _, err := commit(repo, fmt.Sprintf("fan change %d/%d", n, i), map[string]string{
				"apps/src/" + app + "/configmap.yaml": configMap(app+"-config", fmt.Sprintf("fan-%d-%d", n, i)),
			})
			if err != nil {
				return err
			}
			t0, err := b.webhook(ctx, hub, repo.URL, r)
			if err != nil {
				return err
			}
			var s simstats.Stats
			err = harness.Eventually(ctx, 2*time.Minute, 25*time.Millisecond, func() error {
				s, err = fleetStats(ctx, procs, app, r)
				if err != nil {
					return err
				}
				if s.Reported < n {
					return fmt.Errorf("%d/%d agents reported Synced for %s", s.Reported, n, short(r))
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("fan-out commit %d to %d: %w", i, n, err)
			}
			agentT = append(agentT, time.Unix(0, s.LastSent).Sub(t0))
			interval := max(50*time.Millisecond, time.Duration(n/10)*time.Millisecond/2)
			at, err := waitApps(ctx, hub, 2*time.Minute, interval, syncedAt(app, r, n, old))
			if err != nil {
				return fmt.Errorf("fan-out commit %d to %d: hub: %w", i, n, err)
			}
			hubT = append(hubT, at.Sub(t0))
			after, err := hub.Usage()
			if err != nil {
				return err
			}
			cpus = append(cpus, after.CPU-before.CPU)
			rev = r
		}
		stopCommits()
		cpuS := samples(cpus)
		b.logf("%d agents: agents %s; hub %s; hub CPU per commit %s", n, agentT.list(), hubT.list(), cpuS.list())
		measured := fmt.Sprintf("hub: p50 %s, p99 %s; agents: p50 %s, p99 %s (n=%d)", secs(hubT.pct(50)), secs(hubT.pct(99)), secs(agentT.pct(50)), secs(agentT.pct(99)), len(hubT))
		b.curve = append(b.curve, CurvePoint{Clusters: n, Simulated: true, P50: hubT.pct(50), P99: hubT.pct(99), N: len(hubT)})
		// Sizes below the defaults (a small-scale run) fill the row of the
		// next default size up; the figure names the size measured.
		switch {
		case n <= 100:
			b.row(rowFan100).Figure = fmt.Sprintf("commit (webhook) → every agent Synced, %d simulated agents", n)
			b.set(rowFan100, measured, hubT.pct(99) < 2*time.Second)
		case n < 10000:
			b.row(rowFan1k).Figure = fmt.Sprintf("commit (webhook) → every agent Synced, %d simulated agents", n)
			b.set(rowFan1k, measured, hubT.pct(99) < 2*time.Second)
		default:
			b.set(rowFan10k, measured+fmt.Sprintf("; hub CPU %s per commit (p50)", secs(cpuS.pct(50))), hubT.pct(99) < 10*time.Second)
		}
		idleNote := ""
		if n == b.cfg.Fanout[len(b.cfg.Fanout)-1] {
			b.set(rowConnected, fmt.Sprintf("%d connected (hub's gauge), joined in %s", connected, secs(joinTook)), connected >= 10000)
			b.set(rowHubPerAg, fmt.Sprintf("%.1f KiB at %d agents (hub RSS %s)", perAgent/1024, n, mib(u.RSS)), perAgent < 100*1024)
			if idleNote, err = b.idleCPU(ctx, hub, procs, n); err != nil {
				return err
			}
		}
		fmt.Fprintf(&details, `**%d agents** (%d agentsim processes): registration, enrolment and connection of the %d new agents took %s
(hub CPU %s); the hub's gauge shows %d connected; hub RSS %s settled = %.1f KiB per agent.
%d commits, webhook → every agent Synced:

- agents: %s
- hub: %s
- hub CPU per commit: %s
%s
`, n, len(procs), added, secs(joinTook), secs(cpu1.CPU-cpu0.CPU), connected, mib(u.RSS), perAgent/1024,
			len(hubT), agentT.list(), hubT.list(), cpuS.list(), idleNote)
	}
	b.detail("Fan-out to simulated agents", details.String())
	return nil
}

// settledUsage waits d (for the work of the previous step to finish) and
// returns the process's usage.
func settledUsage(ctx context.Context, p *harness.Proc, d time.Duration) (harness.Usage, error) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return harness.Usage{}, ctx.Err()
	}
	return p.Usage()
}

// hubConnected reads flotilla_hub_connected_agents from the hub's /metrics.
func hubConnected(ctx context.Context, hub *harness.Hub) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", hub.HTTPURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+hub.Token)
	resp, err := simClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flotilla_hub_connected_agents "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("hub /metrics has no flotilla_hub_connected_agents")
}

// idleCPU measures the hub's CPU with n agents connected and nothing
// changing: utime+stime of the hub process from /proc over the idle
// window, which spans at least one --resync period (30 s) so that the
// periodic work is in it. Every agent must still be connected at its end
// (no reconnect storm hides in the figure).
func (b *Bench) idleCPU(ctx context.Context, hub *harness.Hub, procs []*simProc, n int) (string, error) {
	window := b.cfg.IdleWindow
	// Let the last commit's work (status writes, API polls) finish.
	if _, err := settledUsage(ctx, hub.Proc, 5*time.Second); err != nil {
		return "", err
	}
	before, err := fleetStats(ctx, procs, "", "")
	if err != nil {
		return "", err
	}
	stop := b.cpuProfile(ctx, hub.Proc, fmt.Sprintf("idle%d-hub", n), rowIdleCPU)
	u0, err := hub.Usage()
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	u1, err := settledUsage(ctx, hub.Proc, window)
	if err != nil {
		return "", err
	}
	took := time.Since(t0)
	stop()
	after, err := fleetStats(ctx, procs, "", "")
	if err != nil {
		return "", err
	}
	cpu := u1.CPU - u0.CPU + u1.ChildCPU - u0.ChildCPU
	pct := 100 * float64(cpu) / float64(took)
	b.row(rowIdleCPU).Figure = fmt.Sprintf("steady state, %d connected agents, no changes: hub CPU", n)
	b.set(rowIdleCPU, fmt.Sprintf("%.2f %% of one core (%s CPU over %s, %s of it in exited children; %d/%d agents connected, %d new sessions during the window)",
		pct, secs(cpu), secs(took), secs(u1.ChildCPU-u0.ChildCPU), after.Connected, n, after.Sessions-before.Sessions), pct < 5 && after.Connected == n)
	return fmt.Sprintf(`
Steady state: with the %d agents connected and no commits, the hub's utime+stime plus that of its exited
children (git; /proc/<pid>/stat fields 14-17) over a window of %s (it spans the hub's 30 s resync): %s =
%.2f %% of one core; %d new agent sessions in the window.
`, n, secs(took), secs(cpu), pct, after.Sessions-before.Sessions), nil
}
