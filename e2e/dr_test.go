//go:build !unit

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// drApps is how many small apps (a ConfigMap and a one-replica Deployment
// each) gamma runs when it is destroyed, besides the other scenarios' apps.
const drApps = 50

// scenarioDisasterRecovery: gamma is destroyed (its agent killed, its
// control plane stopped and its files removed), a fresh cluster is created
// under the same name, `flotilla cluster token gamma` issues a new join
// token, and an agent started with it converges every app gamma ran. The
// time from the agent's start to every app Synced and Healthy at the hub is
// logged (docs/e2e.md records it).
func scenarioDisasterRecovery(e *env) {
	const cl = "gamma"
	e.commit("dr apps", map[string]string{
		"dr/config.yaml":     cmManifest("dr", map[string]string{"role": "dr"}),
		"dr/deployment.yaml": deployment("dr", 1, "nginx:1.27"),
	})
	for i := range drApps {
		name := fmt.Sprintf("dr-%02d", i)
		e.writeApp(name, appSpec{name: name, path: "dr", ns: name, clusters: []string{cl}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	}
	want := e.appsOn(cl)
	if len(want) < drApps {
		e.t.Fatalf("gamma runs %d apps, want at least %d", len(want), drApps)
	}
	e.waitAllSynced(cl, want, time.Time{})
	e.t.Logf("gamma runs %d apps: %s", len(want), strings.Join(want, " "))

	// Destroy gamma: its agent dies with it.
	e.agents[cl].Kill()
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute)
	defer cancel()
	if err := e.clusters[cl].Stop(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.waitConnected(e.hub, cl, false)
	if a, err := e.hub.App(e.t.Context(), "dr-00"); err == nil {
		c := a.Cluster(cl)
		e.t.Logf("hub's view of dr-00 on the destroyed gamma: connected=%t sync=%s health=%s", c.Connected, c.Sync, c.Health)
	}

	// A fresh cluster under the same name, and a new join token.
	fresh := cluster.Start(e.root, e.prov, cl)
	e.setCluster(fresh)
	j, err := e.hub.NewToken(e.t.Context(), cl)
	if err != nil {
		e.t.Fatal(err)
	}
	start := time.Now()
	a, err := harness.StartAgent(binDir, e.dir, fresh.Kubeconfig(), j)
	if err != nil {
		e.t.Fatal(err)
	}
	e.agents[cl] = a
	e.root.Cleanup(a.Stop)
	e.waitAllSynced(cl, want, start)
	took := time.Since(start)
	e.t.Logf("disaster recovery: a fresh %s converged %d apps in %s (agent start to every app Synced and Healthy at the hub)", cl, len(want), took.Round(10*time.Millisecond))
	for i := range drApps {
		ns := fmt.Sprintf("dr-%02d", i)
		e.waitDeployment(cl, ns, "dr", 1, true)
	}
}

// appsOn names the apps the hub targets at cluster.
func (e *env) appsOn(cluster string) []string {
	e.t.Helper()
	var names []string
	e.eventually("apps listed", func() error {
		apps, err := e.hub.Apps(e.t.Context())
		if err != nil {
			return err
		}
		names = names[:0]
		for _, a := range apps {
			if a.Cluster(cluster) != nil {
				names = append(names, a.Name)
			}
		}
		if len(names) < drApps {
			return fmt.Errorf("%d apps on %s", len(names), cluster)
		}
		return nil
	})
	return names
}

// waitAllSynced waits until every app in names is Synced and Healthy on
// cluster, with one `flotilla app list` per check. With since set, the
// status must come from a connected agent's sync that finished after since
// (the hub keeps showing a lost cluster's last report).
func (e *env) waitAllSynced(cluster string, names []string, since time.Time) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%d apps Synced and Healthy on %s", len(names), cluster), func() error {
		apps, err := e.hub.Apps(e.t.Context())
		if err != nil {
			return err
		}
		byName := map[string]api.AppView{}
		for _, a := range apps {
			byName[a.Name] = a
		}
		var pending []string
		for _, n := range names {
			c := byName[n].Cluster(cluster)
			switch {
			case c == nil || c.Sync != "Synced" || c.Health != "Healthy":
				pending = append(pending, n)
			case !since.IsZero() && (!c.Connected || c.LastOperation == nil || c.LastOperation.FinishedAt.Before(since)):
				pending = append(pending, n+"(stale)")
			}
		}
		if len(pending) > 0 {
			return fmt.Errorf("%d not yet: %s", len(pending), strings.Join(pending, " "))
		}
		return nil
	})
}
