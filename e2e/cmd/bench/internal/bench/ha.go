package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/e2e/cmd/agentsim/simstats"
	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// Rows of the ha phase.
const (
	rowHAFailover = "ha-failover"
	rowHACommit   = "ha-commit"
	rowHAWrites   = "ha-writes"
)

func haRows() []*Row {
	return []*Row{
		{ID: rowHAFailover, Figure: "HA failover: kill -9 of the replica holding the most agents (3 replicas, 1,000 simulated agents) → every agent re-attached and Synced", Goal: "p99 < 10 s", Argo: "— (application controller: no failover between shards)"},
		{ID: rowHACommit, Figure: "commit (webhook) → every agent Synced through 3 HA replicas (Kubernetes store) vs one hub (bbolt), 1,000 simulated agents", Goal: "p99 < 2 s (as one hub)", Argo: "—"},
		{ID: rowHAWrites, Figure: "steady state, 10,000 connected agents over 3 HA replicas, no changes: API server writes by the hubs", Goal: "near zero: no write per agent, only the replicas' Lease renewals (constant in the agent count); < 0.1 write/s to anything else", Argo: "—"},
	}
}

// haNamespace is the hubs' namespace on the management API server.
const haNamespace = "flotilla"

// haApp is the one app of the ha phase; it selects every simulated agent.
const haApp = "fan"

// ha measures hub high availability: three hub processes with
// --store=kubernetes on one real management API server behind one agent
// address (a round-robin TCP balancer, as a Service), simulated agents
// spread over them. Rows: failover after kill -9 of the busiest replica;
// commit → Synced through the replicas against one hub (bbolt) with the
// same agents; API server writes at steady state with the largest fleet.
func (b *Bench) ha(ctx context.Context) error {
	n := b.cfg.HAAgents
	// A measurement that fails marks its row and the phase, and the next
	// one still runs: a fleet that falls behind in one row is a figure of
	// the others too.
	var errs []error
	var single, singleAgents samples
	if !b.cfg.HAWritesOnly {
		var err error
		single, singleAgents, err = b.haSingle(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("one hub: %w", err))
		}
	}
	w, err := b.newWorld("ha")
	if err != nil {
		return err
	}
	defer w.close()
	bin, err := b.agentsimBinary(ctx, w)
	if err != nil {
		return err
	}
	repo, rev, err := haRepo(w)
	if err != nil {
		return err
	}
	cls, err := w.clusters(ctx, false, "mgmt")
	if err != nil {
		return err
	}
	mgmt := cls[0]
	cs, err := kubernetes.NewForConfig(mgmt.RESTConfig())
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: haNamespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", haNamespace, err)
	}
	lb, err := harness.StartBalancer()
	if err != nil {
		return err
	}
	w.stops = append(w.stops, lb.Close)
	hubs := make([]*harness.Hub, 3)
	for i := range hubs {
		name := fmt.Sprintf("hub%d", i+1)
		if i > 0 { // the first replica made the admin token
			if err := os.MkdirAll(filepath.Join(w.dir, name), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(w.dir, name, "harness-admin-token"), []byte(hubs[0].Token), 0o600); err != nil {
				return err
			}
		}
		h, err := w.hubIn(ctx, repo, time.Hour, name,
			"--store=kubernetes", "--kubeconfig", mgmt.Kubeconfig(), "--store-namespace", haNamespace, "--store-install-crds",
			"--advertise-addr", lb.Addr, "--ha-identity", name)
		if err != nil {
			return fmt.Errorf("replica %s: %w", name, err)
		}
		hubs[i] = h
		lb.Add(h.AgentAddr)
	}
	for _, h := range hubs {
		if err := appLoaded(ctx, h); err != nil {
			return err
		}
	}
	t0 := time.Now()
	procs, err := b.startSimsAcross(ctx, w, hubs, bin, 0, n)
	if err != nil {
		return err
	}
	if _, err := waitApps(ctx, hubs[0], 5*time.Minute, time.Second, syncedAt(haApp, rev, n, nil)); err != nil {
		return fmt.Errorf("initial fan-out to %d agents: %w", n, err)
	}
	spread, err := gauges(ctx, hubs)
	if err != nil {
		return err
	}
	b.logf("ha: %d agents joined and Synced in %s; streams per replica %v", n, time.Since(t0).Round(time.Second), spread)
	var haT, haAgents samples
	var fo failoverResult
	if !b.cfg.HAWritesOnly {
		if rev, err = b.haCommitsAndKills(ctx, cs, hubs, repo, procs, n, single, singleAgents, &haT, &haAgents, &fo); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}

	// Writes at steady state: first with the agents of the rows above,
	// then with the fleet grown to --ha-idle-agents (which fills the row
	// when it joins).
	idle, err := b.haWritesWindow(ctx, cs, hubs, procs, n, rev)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, err)
		b.row(rowHAWrites).Figure = fmt.Sprintf("steady state, %d connected agents over 3 HA replicas, no changes: API server writes by the hubs", n)
		b.set(rowHAWrites, fmt.Sprintf("failed at %d agents: %v", n, err), false)
		idle = fmt.Sprintf("Not measured: %v.", err)
	} else if total := b.cfg.HAIdleAgents; total > n {
		t0 := time.Now()
		more, err := b.startSimsAcross(ctx, w, hubs, bin, n, total-n)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			note := fmt.Sprintf("HA: growing the fleet from %d to %d simulated agents did not complete in %s (%v); the steady-state writes row is measured at %d agents.",
				n, total, secs(time.Since(t0)), err, n)
			b.notes = append(b.notes, note)
			idle += "\n\n" + note
		} else {
			st, _ := fleetStats(ctx, more, "", "") // only for the log line
			b.logf("ha: %d more agents joined in %s (%d enrolment attempts retried)", total-n, time.Since(t0).Round(time.Second), st.EnrolRetries)
			joined := time.Since(t0)
			more, err := b.haWritesWindow(ctx, cs, hubs, append(slices.Clip(procs), more...), total, rev)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				errs = append(errs, err)
				more = fmt.Sprintf("Not measured at %d agents: %v; the row shows %d agents.", total, err, n)
			}
			idle += fmt.Sprintf("\n\nThe %d more agents joined in %s. ", total-n, secs(joined)) + more
		}
	}
	b.detail("High availability (three hub replicas)", fmt.Sprintf(haMethod,
		n, spread, b.cfg.HACommits, haT.list(), haAgents.list(), single.list(), singleAgents.list(),
		fo.report(), idle))
	return errors.Join(errs...)
}

// haCommitsAndKills fills the commit and failover rows of the ha phase
// and returns the last commit.
func (b *Bench) haCommitsAndKills(ctx context.Context, cs kubernetes.Interface, hubs []*harness.Hub, repo *gitserver.Repo, procs []*simProc, n int,
	single, singleAgents samples, haT, haAgents *samples, fo *failoverResult) (string, error) {
	var errs []error
	stop := b.cpuProfile(ctx, hubs[0].Proc, fmt.Sprintf("ha%d-commits-hub1", n), rowHACommit)
	req0, _ := apiRequests(ctx, cs)
	var rev string
	var err error
	*haT, *haAgents, rev, err = b.simCommits(ctx, hubs, repo, procs, n, b.cfg.HACommits, "ha")
	if req1, rerr := apiRequests(ctx, cs); rerr == nil && req0 != nil {
		b.logf("ha commits: API server requests: %s", requestDiff(req0, req1))
	}
	stop()
	b.row(rowHACommit).Figure = fmt.Sprintf("commit (webhook) → every agent Synced through 3 HA replicas (Kubernetes store) vs one hub (bbolt), %d simulated agents", n)
	measured := fmt.Sprintf("HA: p50 %s, p99 %s; one hub: p50 %s, p99 %s (hub's view; agents: HA p50 %s, p99 %s, one hub p50 %s, p99 %s; n=%d and %d)",
		secs((*haT).pct(50)), secs((*haT).pct(99)), secs(single.pct(50)), secs(single.pct(99)),
		secs((*haAgents).pct(50)), secs((*haAgents).pct(99)), secs(singleAgents.pct(50)), secs(singleAgents.pct(99)), len(*haT), len(single))
	if err != nil {
		if ctx.Err() != nil {
			return rev, ctx.Err()
		}
		errs = append(errs, err)
		measured = fmt.Sprintf("failed after %d of %d commits: %v; before: %s", len(*haT), b.cfg.HACommits, err, measured)
	}
	b.set(rowHACommit, measured, err == nil && (*haT).pct(99) < 2*time.Second)

	*fo, err = b.failovers(ctx, cs, hubs, repo, procs, n, rev)
	rev = fo.rev
	b.row(rowHAFailover).Figure = fmt.Sprintf("HA failover: kill -9 of the replica holding the most agents (3 replicas, %d simulated agents) → every agent re-attached and Synced", n)
	measured = fmt.Sprintf("hub: p50 %s, p99 %s; agents: p50 %s, p99 %s (n=%d kills, %s agents moved per kill)",
		secs(fo.hub.pct(50)), secs(fo.hub.pct(99)), secs(fo.agents.pct(50)), secs(fo.agents.pct(99)), len(fo.hub), fo.movedRange())
	if err != nil {
		if ctx.Err() != nil {
			return rev, ctx.Err()
		}
		errs = append(errs, err)
		measured = fmt.Sprintf("failed after %d of %d kills: %v; before: %s", len(fo.hub), b.cfg.HAKills, err, measured)
	}
	b.set(rowHAFailover, measured, err == nil && len(fo.hub) > 0 && fo.hub.pct(99) < 10*time.Second)

	return rev, errors.Join(errs...)
}

const haMethod = `Three flotilla-hub processes with ` + "`--store=kubernetes`" + ` on one real management API server (etcd +
kube-apiserver, namespace flotilla, default Lease timings: 15 s duration, 2 s retry), each with its own
git mirror, behind one agent address: a round-robin TCP balancer that skips a backend refusing the
connection, as a Service's endpoints drop a dead pod (the replicas advertise it with
` + "`--advertise-addr`" + `). Simulated agents (agentsim, as in the fan-out rows) register through the three
replicas in turn; each agentsim process runs its own copy of the balancer over the three replicas and its
agents enrol and connect through it (a balancer holds two descriptors per connection: one in the
benchmark process could not hold 10,000 agents within its 20,000 open-file limit). Like the real agent, a
simulated agent retries a failed enrolment with jittered backoff (500 ms to 30 s) while the hub is out of
reach or overloaded. One app (a Deployment, a Service and a ConfigMap) selects every agent.

**Commit → every agent Synced, HA against one hub.** The same %[1]d agents, app and commits against one
hub with the default embedded store (bbolt), started and stopped before the replicas in the same run.
Streams per replica after the join: %[2]v. Each commit changes the ConfigMap; the webhook goes to
replica i mod 3, and the hub's view is read from replica i+1 mod 3 (so it includes the status written by
the stream's replica and read back by another through its watch). %[3]d commits each:

- HA, hub's view: %[4]s
- HA, agents (last Synced status sent): %[5]s
- one hub, hub's view: %[6]s
- one hub, agents: %[7]s

**Failover.** The replica whose ` + "`flotilla_hub_connected_agents`" + ` gauge is highest is killed with SIGKILL; a
commit pushed just before is announced by webhook to a survivor right after the kill. The time runs from
the kill until every agent re-attached to a survivor and Synced at that commit: "agents" = the last
simulated agent sent its Synced status for the new commit (exact; an agent of the killed replica can only
receive the commit on a new stream), "hub" = a survivor's API showed every cluster Synced at it (polled
every 50 ms). Afterwards the survivors' gauges must add up to every agent, and the killed replica is
started again before the next kill (agents do not move back, so later kills move more). The
process dies on this host, so its TCP connections close at once; a lost node would add the agents'
keepalive detection (30 s + 10 s timeout) or the balancer's. %[8]s

**API server writes at steady state.** %[9]s
`

// haRepo makes the phase's repository: haApp selecting every simulated
// agent (label sim=true). It returns the repository and the commit.
func haRepo(w *world) (*gitserver.Repo, string, error) {
	repo, err := w.repo("config")
	if err != nil {
		return nil, "", err
	}
	rev, _, err := commit(repo, "ha app", merge(under("apps/src/"+haApp, webApp(haApp, 2, "0")), map[string]string{
		"apps/defs/" + haApp + ".yaml": appDef(haApp, repo.URL, "apps/src/"+haApp, haApp, toSelector("sim", "true"), true),
	}))
	return repo, rev, err
}

func appLoaded(ctx context.Context, h *harness.Hub) error {
	_, err := waitApps(ctx, h, time.Minute, 100*time.Millisecond, func(apps map[string]api.AppView) error {
		if _, ok := apps[haApp]; !ok {
			return fmt.Errorf("app %s not loaded on %s", haApp, h.HTTPURL)
		}
		return nil
	})
	return err
}

// haSingle measures commit → every agent Synced with n agents on one hub
// with the embedded store, for comparison with the replicas.
func (b *Bench) haSingle(ctx context.Context, n int) (hubT, agentT samples, err error) {
	w, err := b.newWorld("ha-single")
	if err != nil {
		return nil, nil, err
	}
	defer w.close()
	bin, err := b.agentsimBinary(ctx, w)
	if err != nil {
		return nil, nil, err
	}
	repo, rev, err := haRepo(w)
	if err != nil {
		return nil, nil, err
	}
	hub, err := w.hub(ctx, repo, time.Hour)
	if err != nil {
		return nil, nil, err
	}
	if err := appLoaded(ctx, hub); err != nil {
		return nil, nil, err
	}
	procs, err := b.startSimsAcross(ctx, w, []*harness.Hub{hub}, bin, 0, n)
	if err != nil {
		return nil, nil, err
	}
	if _, err := waitApps(ctx, hub, 5*time.Minute, time.Second, syncedAt(haApp, rev, n, nil)); err != nil {
		return nil, nil, fmt.Errorf("initial fan-out to %d agents: %w", n, err)
	}
	hubT, agentT, _, err = b.simCommits(ctx, []*harness.Hub{hub}, repo, procs, n, b.cfg.HACommits, "single")
	return hubT, agentT, err
}

// startSimsAcross starts agentsim processes for clusters ha-first …
// ha-(first+n-1), labelled sim=true, registering through hubs in turn, and
// waits until every agent of the returned processes is connected.
func (b *Bench) startSimsAcross(ctx context.Context, w *world, hubs []*harness.Hub, bin string, first, n int) ([]*simProc, error) {
	var procs []*simProc
	for i := first; i < first+n; i += b.cfg.PerSimProc {
		ctl, err := harness.FreeAddr()
		if err != nil {
			return nil, err
		}
		h := hubs[(i/b.cfg.PerSimProc)%len(hubs)]
		args := []string{
			"--hub-api", h.HTTPURL, "--admin-token", h.Token, "--prefix", "ha", "--first", strconv.Itoa(i),
			"--count", strconv.Itoa(min(b.cfg.PerSimProc, first+n-i)), "--label", "sim=true", "--parallel", "16", "--control-listen", ctl,
		}
		if len(hubs) > 1 {
			// Each agentsim process balances its own agents over the
			// replicas (the advertised balancer's copy): one balancer in
			// this process would hold two descriptors per agent, more
			// than its open-file limit allows at 10,000 agents.
			var addrs []string
			for _, h := range hubs {
				addrs = append(addrs, h.AgentAddr)
			}
			args = append(args, "--balance", strings.Join(addrs, ","))
		}
		p, err := harness.StartProc(fmt.Sprintf("agentsim-ha-%d", i), w.dir, bin, args, nil)
		if err != nil {
			return nil, err
		}
		w.stops = append(w.stops, p.Stop)
		procs = append(procs, &simProc{Proc: p, control: ctl})
	}
	return procs, waitJoined(ctx, procs, n)
}

// simCommits makes count commits of haApp's ConfigMap, each announced by
// webhook to hubs[i mod len] and read back from hubs[i+1 mod len], and
// returns webhook → every cluster Synced in the hub's view and in the
// agents' (last Synced status sent), and the last commit.
func (b *Bench) simCommits(ctx context.Context, hubs []*harness.Hub, repo *gitserver.Repo, procs []*simProc, n, count int, tag string) (hubT, agentT samples, rev string, err error) {
	for i := range count {
		to, from := hubs[i%len(hubs)], hubs[(i+1)%len(hubs)]
		apps, err := listApps(ctx, from)
		if err != nil {
			return hubT, agentT, rev, err
		}
		old := digests(apps, haApp)
		r, _, err := commit(repo, fmt.Sprintf("%s change %d", tag, i), map[string]string{
			"apps/src/" + haApp + "/configmap.yaml": configMap(haApp+"-config", fmt.Sprintf("%s-%d", tag, i)),
		})
		if err != nil {
			return hubT, agentT, rev, err
		}
		rev = r
		t0, err := b.webhook(ctx, to, repo.URL, r)
		if err != nil {
			return hubT, agentT, rev, err
		}
		s, err := allReported(ctx, procs, r, n)
		if err != nil {
			return hubT, agentT, rev, fmt.Errorf("%s commit %d: %w", tag, i, err)
		}
		agentT = append(agentT, time.Unix(0, s.LastSent).Sub(t0))
		at, err := waitApps(ctx, from, 2*time.Minute, 50*time.Millisecond, syncedAt(haApp, r, n, old))
		if err != nil {
			return hubT, agentT, rev, fmt.Errorf("%s commit %d: hub: %w", tag, i, err)
		}
		hubT = append(hubT, at.Sub(t0))
	}
	b.logf("%s, %d agents: hub %s; agents %s", tag, n, hubT.list(), agentT.list())
	return hubT, agentT, rev, nil
}

// allReported waits until every one of n agents is connected and sent
// Synced for haApp at rev.
func allReported(ctx context.Context, procs []*simProc, rev string, n int) (simstats.Stats, error) {
	var s simstats.Stats
	err := harness.Eventually(ctx, 2*time.Minute, 25*time.Millisecond, func() error {
		var err error
		if s, err = fleetStats(ctx, procs, haApp, rev); err != nil {
			return err
		}
		if s.Reported < n || s.Connected < n {
			return fmt.Errorf("%d/%d agents reported Synced for %s, %d connected", s.Reported, n, short(rev), s.Connected)
		}
		return nil
	})
	return s, err
}

// gauges reads each hub's flotilla_hub_connected_agents.
func gauges(ctx context.Context, hubs []*harness.Hub) ([]int, error) {
	out := make([]int, len(hubs))
	for i, h := range hubs {
		n, err := hubConnected(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.HTTPURL, err)
		}
		out[i] = n
	}
	return out, nil
}

// failoverResult holds the kills' figures.
type failoverResult struct {
	hub, agents samples
	moved       []int
	lines       []string
	rev         string
}

func (f failoverResult) movedRange() string {
	if len(f.moved) == 0 {
		return "no"
	}
	return fmt.Sprintf("%d–%d", slices.Min(f.moved), slices.Max(f.moved))
}

func (f failoverResult) report() string {
	return fmt.Sprintf("%d kills:\n\n%s\n\n- hub's view: %s\n- agents: %s", len(f.lines), strings.Join(f.lines, "\n"), f.hub.list(), f.agents.list())
}

// failovers kills the busiest replica b.cfg.HAKills times, restarting it
// after each, and times every agent back and Synced at a commit announced
// right after the kill.
func (b *Bench) failovers(ctx context.Context, cs kubernetes.Interface, hubs []*harness.Hub, repo *gitserver.Repo, procs []*simProc, n int, rev string) (failoverResult, error) {
	res := failoverResult{rev: rev}
	stopProf := func() {} // the first kill's profile of a survivor
	defer func() { stopProf() }()
	for k := range b.cfg.HAKills {
		counts, err := gauges(ctx, hubs)
		if err != nil {
			return res, err
		}
		v := 0
		for i, c := range counts {
			if c > counts[v] {
				v = i
			}
		}
		victim := hubs[v]
		var survivors []*harness.Hub
		for i, h := range hubs {
			if i != v {
				survivors = append(survivors, h)
			}
		}
		reader := survivors[(k+1)%len(survivors)]
		apps, err := listApps(ctx, reader)
		if err != nil {
			return res, err
		}
		old := digests(apps, haApp)
		r, _, err := commit(repo, fmt.Sprintf("failover %d", k), map[string]string{
			"apps/src/" + haApp + "/configmap.yaml": configMap(haApp+"-config", fmt.Sprintf("failover-%d", k)),
		})
		if err != nil {
			return res, err
		}
		res.rev = r
		// The webhook must not be held by the survivor's refresh gap.
		if wait := time.Until(b.lastHook.Add(refreshGap)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		before, err := fleetStats(ctx, procs, "", "")
		if err != nil {
			return res, err
		}
		if k == 0 {
			stopProf = b.cpuProfile(ctx, survivors[0].Proc, fmt.Sprintf("ha%d-failover-survivor", n), rowHAFailover)
		}
		req0, _ := apiRequests(ctx, cs)
		tKill := time.Now()
		victim.Kill()
		if _, err := b.webhook(ctx, survivors[k%len(survivors)], repo.URL, r); err != nil {
			return res, err
		}
		s, err := allReported(ctx, procs, r, n)
		if err != nil {
			return res, fmt.Errorf("kill %d: %w", k, err)
		}
		agentT := time.Unix(0, s.LastSent).Sub(tKill)
		at, err := waitApps(ctx, reader, 2*time.Minute, 50*time.Millisecond, syncedAt(haApp, r, n, old))
		if err != nil {
			return res, fmt.Errorf("kill %d: hub: %w", k, err)
		}
		hubT := at.Sub(tKill)
		if req1, rerr := apiRequests(ctx, cs); rerr == nil && req0 != nil {
			b.logf("ha kill %d: API server requests until Synced: %s", k+1, requestDiff(req0, req1))
		}
		stopProf()
		stopProf = func() {}
		var after []int
		if err := harness.Eventually(ctx, time.Minute, 100*time.Millisecond, func() error {
			g, err := gauges(ctx, survivors)
			if err != nil {
				return err
			}
			after = g
			if sum := g[0] + g[1]; sum != n {
				return fmt.Errorf("survivors hold %d streams, want %d", sum, n)
			}
			return nil
		}); err != nil {
			return res, fmt.Errorf("kill %d: %w", k, err)
		}
		moved := s.Sessions - before.Sessions
		res.hub, res.agents, res.moved = append(res.hub, hubT), append(res.agents, agentT), append(res.moved, moved)
		line := fmt.Sprintf("- kill %d: hub%d held %d of %v; %d agents opened new streams; hub's view %s, agents %s after the kill; survivors then held %v",
			k+1, v+1, counts[v], counts, moved, secs(hubT), secs(agentT), after)
		res.lines = append(res.lines, line)
		b.logf("ha failover %s", strings.TrimPrefix(line, "- "))
		if err := victim.Restart(ctx); err != nil {
			return res, fmt.Errorf("restart hub%d: %w", v+1, err)
		}
		// Back in service: its watches are synced and it answers at the
		// commit.
		if _, err := waitApps(ctx, victim, 2*time.Minute, 250*time.Millisecond, syncedAt(haApp, r, n, nil)); err != nil {
			return res, fmt.Errorf("restarted hub%d: %w", v+1, err)
		}
	}
	return res, nil
}

// haWritesWindow waits until total agents are Synced at rev and the
// join's writes are over, counts the API server's write requests over
// b.cfg.HAIdleWindow with nothing changing and fills the writes row.
func (b *Bench) haWritesWindow(ctx context.Context, cs kubernetes.Interface, hubs []*harness.Hub, procs []*simProc, total int, rev string) (string, error) {
	if _, err := allReported(ctx, procs, rev, total); err != nil {
		return "", err
	}
	if _, err := waitApps(ctx, hubs[0], 10*time.Minute, 2*time.Second, syncedAt(haApp, rev, total, nil)); err != nil {
		return "", fmt.Errorf("%d agents Synced: %w", total, err)
	}
	spread, err := gauges(ctx, hubs)
	if err != nil {
		return "", err
	}
	// Quiet: the join's writes (statuses, history, audit) are done when a
	// 5 s interval sees no write but to Leases. A fleet that never gets
	// there is measured all the same: the window shows what it writes.
	settled := harness.Eventually(ctx, 2*time.Minute, 10*time.Millisecond, func() error {
		w0, err := apiWrites(ctx, cs)
		if err != nil {
			return err
		}
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		w1, err := apiWrites(ctx, cs)
		if err != nil {
			return err
		}
		if d := sumWrites(w0, w1, func(k string) bool { return !strings.HasSuffix(k, " leases") }); d > 0 {
			return fmt.Errorf("%.0f writes in 5 s", d)
		}
		return nil
	})
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if settled != nil {
		b.logf("ha: writes did not settle before the window: %v", settled)
	}

	st0, err := fleetStats(ctx, procs, "", "")
	if err != nil {
		return "", err
	}
	stopOwn, err := countOwnLeaseWrites(ctx, cs)
	if err != nil {
		return "", err
	}
	var cpu0 []harness.Usage
	for _, h := range hubs {
		u, err := h.Usage()
		if err != nil {
			return "", err
		}
		cpu0 = append(cpu0, u)
	}
	w0, err := apiWrites(ctx, cs)
	if err != nil {
		_, _ = stopOwn() // the window failed already
		return "", err
	}
	t0 := time.Now()
	select {
	case <-time.After(b.cfg.HAIdleWindow):
	case <-ctx.Done():
		_, _ = stopOwn() // the window failed already
		return "", ctx.Err()
	}
	w1, err := apiWrites(ctx, cs)
	took := time.Since(t0)
	ownWrites, ownErr := stopOwn()
	if err := errors.Join(err, ownErr); err != nil {
		return "", err
	}
	var cpus []string
	var cpuSum time.Duration
	for i, h := range hubs {
		u, err := h.Usage()
		if err != nil {
			return "", err
		}
		d := u.CPU - cpu0[i].CPU + u.ChildCPU - cpu0[i].ChildCPU
		cpuSum += d
		cpus = append(cpus, fmt.Sprintf("%.2f %%", 100*float64(d)/float64(took)))
	}
	st1, err := fleetStats(ctx, procs, "", "")
	if err != nil {
		return "", err
	}
	all := sumWrites(w0, w1, func(string) bool { return true })
	others := sumWrites(w0, w1, func(k string) bool { return !strings.HasSuffix(k, " leases") })
	hubWrites := all - float64(ownWrites)
	rate, otherRate := hubWrites/took.Seconds(), others/took.Seconds()
	_, parts, leases := diffWrites(w0, w1)
	newSessions := st1.Sessions - st0.Sessions
	b.row(rowHAWrites).Figure = fmt.Sprintf("steady state, %d connected agents over 3 HA replicas, no changes: API server writes by the hubs", total)
	b.set(rowHAWrites, fmt.Sprintf("%.2f writes/s, %.2f/s to other than Leases (%.0f in %s; Leases: %s, of which the API server's own %d taken off; other resources: %s); %d/%d agents connected, %d new sessions",
		rate, otherRate, hubWrites, secs(took), leases, ownWrites, parts, st1.Connected, total, newSessions),
		otherRate < 0.1 && st1.Connected == total && newSessions == 0)
	settledNote := "The join's writes had stopped before the window (a 5 s interval with no write but to Leases)."
	if settled != nil {
		settledNote = "The join's writes had not stopped within 2 minutes (" + settled.Error() + "); the window was measured all the same."
	}
	return fmt.Sprintf(`%d agents connected (streams per replica %v), every one Synced at the current
commit, no change. %s Write requests are read from the management API server's own
`+"`apiserver_request_total`"+` (/metrics; verbs POST, PUT, PATCH, APPLY, DELETE, DELETECOLLECTION, any response
code) before and after a window of %s. Only the hubs write to it, except the API server's own identity Lease
in kube-system (renewed every 10 s), whose renewals are counted with a watch on kube-system Leases during
the window and taken off. The hubs' Lease writes are the Lease holder's renewal (every 2 s) and each replica's
heartbeat Lease (`+"`--ha-heartbeat-interval`"+`, 5 s), constant in the number of agents. Result: %.0f writes by the hubs = %.2f/s (Leases: %s; other resources: %s). Hub CPU
over the window (utime+stime, per replica): %s; %d new agent sessions.`,
		total, spread, settledNote, secs(took), hubWrites, rate, leases, parts, strings.Join(cpus, ", "), newSessions), nil
}

// sumWrites adds the growth of the write counts whose key keep accepts.
func sumWrites(before, after map[string]float64, keep func(string) bool) float64 {
	var d float64
	for k, v := range after {
		if keep(k) {
			d += v - before[k]
		}
	}
	return d
}

// countOwnLeaseWrites watches kube-system Leases (the API server's own
// identity Lease) from now on and counts their changes; stop ends the
// watch and returns the count, or an error if the watch ended early.
func countOwnLeaseWrites(ctx context.Context, cs kubernetes.Interface) (stop func() (int, error), _ error) {
	list, err := cs.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list kube-system Leases: %w", err)
	}
	wi, err := cs.CoordinationV1().Leases("kube-system").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return nil, fmt.Errorf("watch kube-system Leases: %w", err)
	}
	done := make(chan struct{})
	type result struct {
		n   int
		err error
	}
	out := make(chan result, 1)
	go func() {
		n := 0
		for {
			select {
			case ev, ok := <-wi.ResultChan():
				if !ok {
					out <- result{n, errors.New("watch of kube-system Leases ended during the window")}
					return
				}
				switch ev.Type {
				case watch.Added, watch.Modified, watch.Deleted:
					n++
				case watch.Error:
					out <- result{n, fmt.Errorf("watch of kube-system Leases: %v", ev.Object)}
					return
				}
			case <-done:
				out <- result{n, nil}
				return
			}
		}
	}()
	var once sync.Once
	var r result
	return func() (int, error) {
		once.Do(func() {
			close(done)
			r = <-out
			wi.Stop()
		})
		return r.n, r.err
	}, nil
}
