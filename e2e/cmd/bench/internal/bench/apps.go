package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// apps measures 100 new apps → all Synced on one cluster, the memory of
// the hub and agent with them, and disaster recovery: a fresh cluster's
// agent converging the same apps.
func (b *Bench) apps(ctx context.Context) error {
	w, err := b.newWorld("apps")
	if err != nil {
		return err
	}
	defer w.close()
	s, err := w.startOneHub(ctx, oneHubSpec{clusters: []string{"first", "fresh"}, label: "bench=apps"})
	if err != nil {
		return err
	}
	repo, cls, hub, agent := s.repo, s.clusters, s.hub, s.agent

	n := b.cfg.Apps
	files := map[string]string{}
	names := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("app-%03d", i+1)
		names[i] = name
		files["apps/defs/"+name+".yaml"] = appDef(name, repo.URL, "apps/src/"+name, name, toSelector("bench", "apps"), true)
		for k, v := range under("apps/src/"+name, webApp(name, 1, "1")) {
			files[k] = v
		}
	}
	rev, _, err := commit(repo, fmt.Sprintf("%d new apps", n), files)
	if err != nil {
		return err
	}
	stopHub, stopAgent := b.cpuProfile(ctx, hub.Proc, "newapps-hub", rowNewApps), b.cpuProfile(ctx, agent.Proc, "newapps-agent", rowNewApps)
	t0 := time.Now()
	if err := hub.PushWebhookAt(ctx, repo.URL, rev); err != nil {
		return err
	}
	at, err := waitApps(ctx, hub, 3*time.Minute, 20*time.Millisecond, allSyncedOn(cls[0].Name(), rev, names))
	stopHub()
	stopAgent()
	if err != nil {
		return fmt.Errorf("%d new apps: %w", n, err)
	}
	took := at.Sub(t0)
	b.set(rowNewApps, fmt.Sprintf("%s (%d apps, %d objects)", secs(took), n, 3*n), took < 3*time.Second)

	// Memory once the apps are Synced: sampled for 10 s; the verdict is
	// on the last sample (settled), the peak is shown beside it.
	m, err := sampleRSS(ctx, 10*time.Second, hub.Proc, agent.Proc)
	if err != nil {
		return err
	}
	settled := m.lastA + m.lastB
	b.heapProfile(ctx, hub.Proc, "apps-hub", rowMem100)
	b.heapProfile(ctx, agent.Proc, "apps-agent", rowMem100)
	b.set(rowMem100, fmt.Sprintf("%s = %.0f MB, 10 s after Synced: hub %s (anonymous %s, file-backed %s; %s) + agent %s (anonymous %s, file-backed %s); peak %s",
		mib(settled), float64(settled)/1e6, mib(m.lastA), mib(m.lastAnonA), mib(m.lastFileA), m.kids(), mib(m.lastB), mib(m.lastAnonB), mib(m.lastFileB), mib(m.peakSum)), settled < 100_000_000)

	// Disaster recovery: the first cluster is gone; a fresh one with the
	// same label is registered and its agent started.
	agent.Stop()
	j, err := hub.AddCluster(ctx, cls[1].Name(), "bench=apps")
	if err != nil {
		return err
	}
	t0 = time.Now()
	a2, err := harness.StartAgent(b.cfg.BinDir, w.dir, cls[1].Kubeconfig(), j, "--log-level", "info")
	if err != nil {
		return err
	}
	w.stops = append(w.stops, a2.Stop)
	stopHub, stopAgent = b.cpuProfile(ctx, hub.Proc, "dr-hub", rowDisasterRe), b.cpuProfile(ctx, a2.Proc, "dr-agent", rowDisasterRe)
	at, err = waitApps(ctx, hub, 5*time.Minute, 20*time.Millisecond, allSyncedOn(cls[1].Name(), rev, names))
	stopHub()
	stopAgent()
	if err != nil {
		return fmt.Errorf("disaster recovery: %w", err)
	}
	dr := at.Sub(t0)
	b.set(rowDisasterRe, fmt.Sprintf("%s (%d apps, %d objects, from agent start: enrolment included)", secs(dr), n, 3*n), dr < 30*time.Second)
	b.detail("New apps, memory, disaster recovery", fmt.Sprintf(`One cluster (etcd + kube-apiserver), one agent, one hub following an app-of-apps repo. One commit adds
%d Application definitions (each selecting clusters by label) and their sources (a Deployment, a Service and
a ConfigMap each: %d objects), followed by a webhook; the sample ends when all %d apps are Synced on the
cluster: %s.

Memory: VmRSS of the hub and agent processes, each with its child processes alive at the sample (the
hub's render workers, which run Helm, Kustomize and Jsonnet and exit after --render-worker-idle, 10 s;
git commands), sampled every 250 ms for 10 s after that; at the end (settled) hub %s + agent %s = %s
(%s; at most %d child processes at one sample); the peak of the sum was %s (hub peak %s, agent peak %s).
The apps of this row are plain YAML, which the hub renders in its own process.

Disaster recovery: the first agent is stopped, a second, empty cluster is registered with the same label
(`+"`flotilla cluster add`"+`) and its agent started with the join data; the time runs from the agent's start
(enrolment, first Hello, the apps' namespaces and objects created) until the hub shows all %d apps Synced
on it: %s.
`, n, 3*n, n, secs(took), mib(m.lastA), mib(m.lastB), mib(settled), m.kids(), m.maxKids, mib(m.peakSum), mib(m.peakA), mib(m.peakB), n, secs(dr)))
	return nil
}

// allSyncedOn is a condition: every app in names is at rev and Synced on
// cluster.
func allSyncedOn(cluster, rev string, names []string) func(map[string]api.AppView) error {
	return func(apps map[string]api.AppView) error {
		done := 0
		var first string
		for _, name := range names {
			a, ok := apps[name]
			ok = ok && a.Revision == rev
			var c api.AppClusterView
			if ok {
				ok = false
				for _, cv := range a.Clusters {
					if cv.Cluster == cluster {
						c, ok = cv, cv.Sync == "Synced" && cv.Digest != ""
					}
				}
			}
			if ok {
				done++
			} else if first == "" {
				first = fmt.Sprintf("%s: %s %s %s", name, c.Sync, c.Error, c.Message)
			}
		}
		if done != len(names) {
			return fmt.Errorf("%d/%d apps Synced on %s (%s)", done, len(names), cluster, first)
		}
		return nil
	}
}

// waitConnected waits until the hub shows cluster connected.
func waitConnected(ctx context.Context, hub *harness.Hub, cluster string) error {
	return harness.Eventually(ctx, 2*time.Minute, 50*time.Millisecond, func() error {
		var c api.ClusterView
		if err := hub.DoJSON(ctx, "GET", "/api/v1/clusters/"+cluster, nil, &c); err != nil {
			return err
		}
		if !c.Connected {
			return fmt.Errorf("cluster %s not connected", cluster)
		}
		return nil
	})
}

// rssSamples summarises VmRSS samples of two processes.
type rssSamples struct {
	peakA, peakB, peakSum int64
	lastA, lastB          int64
	// last samples split into anonymous and file-backed memory
	lastAnonA, lastFileA, lastAnonB, lastFileB int64
	// child processes (render workers, git...) alive at the last sample
	// and their RSS, counted in the figures above; the most seen at once
	lastKidsA, lastKidsB       int
	lastKidsRSSA, lastKidsRSSB int64
	maxKids                    int
}

// kids says which child processes the last sample counted.
func (s rssSamples) kids() string {
	if s.lastKidsA+s.lastKidsB == 0 {
		return "no child process alive: render workers exit after 10 s idle"
	}
	return fmt.Sprintf("with %d child processes of the hub (%s) and %d of the agent (%s)", s.lastKidsA, mib(s.lastKidsRSSA), s.lastKidsB, mib(s.lastKidsRSSB))
}

// sampleRSS samples the processes every 250 ms for d. Each figure is a
// process plus its descendants alive at the sample (the hub's render
// workers, git commands).
func sampleRSS(ctx context.Context, d time.Duration, a, b *harness.Proc) (rssSamples, error) {
	var s rssSamples
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	end := time.Now().Add(d)
	for {
		ua, err := a.TreeUsage()
		if err != nil {
			return s, err
		}
		ub, err := b.TreeUsage()
		if err != nil {
			return s, err
		}
		s.lastKidsA, s.lastKidsB, s.lastKidsRSSA, s.lastKidsRSSB = ua.Descendants, ub.Descendants, ua.DescendantRSS, ub.DescendantRSS
		s.maxKids = max(s.maxKids, ua.Descendants+ub.Descendants)
		s.lastA, s.lastB = ua.RSS, ub.RSS
		s.lastAnonA, s.lastFileA, s.lastAnonB, s.lastFileB = ua.RSSAnon, ua.RSSFile, ub.RSSAnon, ub.RSSFile
		s.peakA, s.peakB, s.peakSum = max(s.peakA, ua.RSS), max(s.peakB, ub.RSS), max(s.peakSum, ua.RSS+ub.RSS)
		if !time.Now().Before(end) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-t.C:
		}
	}
}
