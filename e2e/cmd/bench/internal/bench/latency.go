package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// latency measures commit → Synced through the webhook at 1 and N real
// clusters, and commit → picked up without a webhook.
func (b *Bench) latency(ctx context.Context) error {
	w, err := b.newWorld("latency")
	if err != nil {
		return err
	}
	defer w.close()
	names := make([]string, b.cfg.Clusters)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i+1)
	}
	repo, err := w.repo("config")
	if err != nil {
		return err
	}
	files := merge(
		under("apps/src/one", webApp("one", 2, "0")),
		under("apps/src/many", webApp("many", 2, "0")),
		map[string]string{
			"apps/defs/one.yaml":  appDef("one", repo.URL, "apps/src/one", "one", toClusters(names[0]), true),
			"apps/defs/many.yaml": appDef("many", repo.URL, "apps/src/many", "many", toSelector("bench", "latency"), true),
		})
	rev, _, err := commit(repo, "two apps", files)
	if err != nil {
		return err
	}
	b.logf("starting %d clusters (etcd + kube-apiserver each)", len(names))
	t := time.Now()
	cls, err := w.clusters(ctx, false, names...)
	if err != nil {
		return err
	}
	b.logf("clusters ready in %s", time.Since(t).Round(100*time.Millisecond))
	hub, err := w.hub(ctx, repo, b.cfg.PollInterval)
	if err != nil {
		return err
	}
	var agents []*harness.Agent
	for _, c := range cls {
		a, err := w.enroll(ctx, hub, c, "bench=latency")
		if err != nil {
			return err
		}
		agents = append(agents, a)
	}
	if _, err := waitApps(ctx, hub, 3*time.Minute, 100*time.Millisecond, func(apps map[string]api.AppView) error {
		if err := syncedAt("one", rev, 1, nil)(apps); err != nil {
			return err
		}
		return syncedAt("many", rev, len(names), nil)(apps)
	}); err != nil {
		return fmt.Errorf("initial sync: %w", err)
	}
	b.logf("both apps Synced on %d clusters", len(names))

	stopHub, stopAgent := b.cpuProfile(ctx, hub.Proc, "webhook1-hub", rowWebhook1), b.cpuProfile(ctx, agents[0].Proc, "webhook1-agent", rowWebhook1)
	one, err := b.webhookSamples(ctx, hub, repo, "one", 1, b.cfg.Commits)
	stopHub()
	stopAgent()
	if err != nil {
		return err
	}
	b.set(rowWebhook1, fmt.Sprintf("p50 %s, p99 %s (n=%d)", secs(one.pct(50)), secs(one.pct(99)), len(one)), one.pct(50) < 100*time.Millisecond)
	b.curve = append(b.curve, CurvePoint{Clusters: 1, P50: one.pct(50), P99: one.pct(99), N: len(one)})
	procs := map[string][]int{"flotilla-hub": {hub.Proc.PID()}, "bench (this process, with the git server's http-backend and the commits' git)": {os.Getpid()}}
	for _, a := range agents {
		procs["flotilla-agents"] = append(procs["flotilla-agents"], a.Proc.PID())
	}
	for _, c := range cls {
		for _, pid := range c.PIDs() {
			procs[componentName(pid)+"s"] = append(procs[componentName(pid)+"s"], pid)
		}
	}
	share := newCPUShare(procs)
	stopHub, stopAgent = b.cpuProfile(ctx, hub.Proc, "webhookN-hub", rowWebhook10), b.cpuProfile(ctx, agents[0].Proc, "webhookN-agent", rowWebhook10)
	many, err := b.webhookSamples(ctx, hub, repo, "many", len(names), b.cfg.Commits)
	stopHub()
	stopAgent()
	if err != nil {
		return err
	}
	cpuPerCommit := share.per(len(many))
	b.row(rowWebhook10).Figure = fmt.Sprintf("commit (webhook) → every cluster Synced, %d real clusters", len(names))
	b.set(rowWebhook10, fmt.Sprintf("p50 %s, p99 %s (n=%d, %d clusters)", secs(many.pct(50)), secs(many.pct(99)), len(many), len(names)),
		many.pct(50) < 200*time.Millisecond && many.pct(99) < 400*time.Millisecond)
	b.curve = append(b.curve, CurvePoint{Clusters: len(names), P50: many.pct(50), P99: many.pct(99), N: len(many)})
	b.detail("Commit (webhook) → Synced", fmt.Sprintf(`%d clusters, each etcd + kube-apiserver; one agent per cluster; one hub following an
app-of-apps repo (apps/defs) over HTTP. App "one" targets one cluster, app "many" all %d (by label). Each
commit changes the app's ConfigMap (its Deployment, Service and ConfigMap form the bundle), is pushed,
and a GitHub push webhook is sent; the sample ends when the hub shows the new digest Synced on every
target.

- 1 cluster (n=%d): %s
- %d clusters (n=%d): %s

CPU per commit of the %d-cluster series (/proc of each process over the series, divided by its commits;
the test's commit and push included, %d cores): %s.
`, len(names), len(names), len(one), one.list(), len(names), len(many), many.list(), len(names), runtime.NumCPU(), cpuPerCommit))

	if err := b.polling(ctx, hub, repo, "many", len(names)); err != nil {
		return err
	}
	b.clusterRSS(cls)
	return nil
}

// webhookSamples commits n changes to app, each followed by a webhook, and
// returns the times from webhook to every target Synced.
func (b *Bench) webhookSamples(ctx context.Context, hub *harness.Hub, repo *gitserver.Repo, app string, targets, n int) (samples, error) {
	var out samples
	for i := range n {
		apps, err := listApps(ctx, hub)
		if err != nil {
			return nil, err
		}
		old := digests(apps, app)
		rev, _, err := commit(repo, fmt.Sprintf("%s change %d", app, i), map[string]string{
			"apps/src/" + app + "/configmap.yaml": configMap(app+"-config", fmt.Sprintf("webhook-%d", i)),
		})
		if err != nil {
			return nil, err
		}
		t0, err := b.webhook(ctx, hub, repo.URL, rev)
		if err != nil {
			return nil, err
		}
		at, err := waitApps(ctx, hub, time.Minute, 10*time.Millisecond, syncedAt(app, rev, targets, old))
		if err != nil {
			return nil, fmt.Errorf("commit %d of %s: %w", i, app, err)
		}
		out = append(out, at.Sub(t0))
	}
	b.logf("%s: %d webhook samples: %s", app, n, out.list())
	return out, nil
}

// polling commits without a webhook and measures when the hub picked the
// commit up (its app revision moved) and when every target was Synced.
func (b *Bench) polling(ctx context.Context, hub *harness.Hub, repo *gitserver.Repo, app string, targets int) error {
	interval := b.cfg.PollInterval
	bound := interval + interval/10
	var pickup, synced samples
	for i := range b.cfg.PollCommits {
		apps, err := listApps(ctx, hub)
		if err != nil {
			return err
		}
		old := digests(apps, app)
		// Commits at different points of the poll cycle: i/n of an
		// interval after the last pickup.
		select {
		case <-time.After(time.Duration(i) * interval / time.Duration(b.cfg.PollCommits)):
		case <-ctx.Done():
			return ctx.Err()
		}
		rev, pushed, err := commit(repo, fmt.Sprintf("%s poll change %d", app, i), map[string]string{
			"apps/src/" + app + "/configmap.yaml": configMap(app+"-config", fmt.Sprintf("poll-%d", i)),
		})
		if err != nil {
			return err
		}
		var picked time.Time
		at, err := waitApps(ctx, hub, 3*interval+time.Minute, 20*time.Millisecond, func(apps map[string]api.AppView) error {
			if picked.IsZero() && apps[app].Revision == rev {
				picked = time.Now()
			}
			return syncedAt(app, rev, targets, old)(apps)
		})
		if err != nil {
			return fmt.Errorf("poll commit %d: %w", i, err)
		}
		pickup = append(pickup, picked.Sub(pushed))
		synced = append(synced, at.Sub(pushed))
	}
	worst := pickup.pct(100)
	b.set(rowPolling, fmt.Sprintf("at --poll-interval %s: picked up after %s median, %s max (n=%d); all %d clusters Synced %s median, %s max; bound %s",
		interval, secs(pickup.pct(50)), secs(worst), len(pickup), targets, secs(synced.pct(50)), secs(synced.pct(100)), secs(bound)), worst <= bound)
	b.detail("Commit without webhook", fmt.Sprintf(`The same hub (`+"`--poll-interval %s`"+`, up to 10 %% jitter per poll) and app "many"; commits
are pushed with no webhook. Picked up = the hub's app revision moved to the commit (time from the end of
`+"`git push`"+`); then every cluster Synced. The bound is the interval plus the largest jitter (%s).
The default interval is 30 s; a short one is measured so the run stays short — the pickup is a fraction
of the interval plus one fetch, whatever the interval. Commit i of n is pushed i/n of an interval after the
previous pickup, so the samples cover the poll cycle.

- picked up: %s
- all Synced: %s
`, interval, secs(bound), pickup.list(), synced.list()))
	return nil
}

// clusterRSS notes what one test cluster costs, for the reader.
func (b *Bench) clusterRSS(cls []*cluster.ProcessCluster) {
	var parts []string
	for _, c := range cls[:min(3, len(cls))] {
		if n, err := c.RSSBytes(); err == nil {
			parts = append(parts, c.Name()+" "+mib(n))
		}
	}
	if len(parts) > 0 {
		b.notes = append(b.notes, "A test cluster (etcd + kube-apiserver) uses "+strings.Join(parts, ", ")+" RSS; it is not part of any Flotilla figure.")
	}
}
