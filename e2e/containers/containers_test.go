//go:build !unit

package containers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
)

// TestContainers runs the shipped images and manifests: the hub and the
// agents are containers of the images make e2e-containers built, each
// agent with in-cluster credentials and the RBAC of deploy/agent (alpha) or
// deploy/agent/namespaced (beta), on the network of its cluster, whose API
// server no other network reaches. The scenarios share this world and run
// in order; the ones that break something run last and leave it healed.
func TestContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers; run without -short")
	}
	w := newWorld(t)
	steps := []struct {
		name string
		run  func(*world)
	}{
		{"TrustDirection", scenarioTrustDirection},
		{"Seed", scenarioSeed},
		{"NamespacedConfined", scenarioNamespacedConfined},
		{"NetworkCut", scenarioNetworkCut},
		{"AgentRestartReadOnly", scenarioAgentRestart},
		{"HubReplacedFromBackup", scenarioHubReplaced},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			sub := *w
			sub.t = t
			s.run(&sub)
			w.hub, w.hubCtr = sub.hub, sub.hubCtr
		})
		if !ok {
			t.FailNow()
		}
	}
}

// scenarioTrustDirection: from inside the hub container's network
// namespace no cluster's API server can be reached (by its address on its
// network, nor by the port published on the host), while the probe does
// reach the hub itself there; from an agent's namespace both its API server
// and the hub are reached. A cluster network connected to the hub, a route
// or a published port open to other networks fails it.
func scenarioTrustDirection(w *world) {
	ctx := w.t.Context()
	hubSelf := hubAlias + ":8443"
	// The name agents use for their API server means nothing on the hub's
	// network.
	closed := []string{cluster.APIServerAlias + ":" + cluster.APIServerPort}
	gw, err := w.d.Gateway(ctx, w.hubNet)
	if err != nil {
		w.t.Fatal(err)
	}
	for name, c := range w.clusters {
		ip, err := w.d.IP(ctx, c.APIServerContainer(), c.Network())
		if err != nil {
			w.t.Fatal(err)
		}
		hostPort, err := w.d.HostPort(ctx, c.APIServerContainer(), "6443/tcp")
		if err != nil {
			w.t.Fatal(err)
		}
		_, port, _ := strings.Cut(hostPort, ":")
		closed = append(closed, ip+":6443", gw+":"+port)
		w.t.Logf("cluster %s: API server %s:6443 on %s, published on %s", name, ip, c.Network(), hostPort)
	}
	got := w.probeFrom(w.hubCtr, append([]string{hubSelf}, closed...)...)
	if got[hubSelf] != "open" {
		w.t.Fatalf("the probe in the hub's network namespace does not reach the hub itself at %s: %v", hubSelf, got)
	}
	for _, addr := range closed {
		if v := got[addr]; !strings.HasPrefix(v, "closed") {
			w.t.Errorf("the hub container reaches a cluster API server at %s (%s)", addr, v)
		}
	}
	for name, agent := range w.agents {
		api := cluster.APIServerAlias + ":" + cluster.APIServerPort
		got := w.probeFrom(agent, api, hubSelf)
		if got[api] != "open" || got[hubSelf] != "open" {
			w.t.Errorf("agent of %s: want its API server and the hub reached: %v", name, got)
		}
	}
}

const seedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
`

func seedConfig(greeting string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: " + greeting + "\n"
}

// scenarioSeed: a commit reaches both clusters; a replica count changed
// with kubectl is set back by each agent.
func scenarioSeed(w *world) {
	w.kubectl("alpha", "create", "namespace", "team-a")
	rev := w.commit("seed", map[string]string{
		"seed/deployment.yaml": seedDeployment,
		"seed/config.yaml":     seedConfig("hello"),
	})
	w.writeApp("seed", "seed", "team-a", "alpha", "beta")
	if err := w.hub.WaitSynced(w.t.Context(), wait, "seed", rev, false, "alpha", "beta"); err != nil {
		w.t.Fatal(err)
	}
	for _, cl := range []string{"alpha", "beta"} {
		data, err := w.configMapData(cl, "team-a", "web-config")
		if err != nil || data["greeting"] != "hello" {
			w.t.Fatalf("%s: ConfigMap team-a/web-config: %v %v", cl, data, err)
		}
		w.kubectl(cl, "-n", "team-a", "scale", "deployment/web", "--replicas=5")
	}
	for _, cl := range []string{"alpha", "beta"} {
		w.eventually(cl+": replicas back to 2", func() error {
			d, err := w.admin[cl].AppsV1().Deployments("team-a").Get(w.t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if *d.Spec.Replicas != 2 {
				return fmt.Errorf("replicas %d", *d.Spec.Replicas)
			}
			return nil
		})
	}
}

// scenarioNamespacedConfined: beta's agent has only the Roles and the
// policy ConfigMap of deploy/agent/namespaced (team-a, team-b); an app
// whose object lies in another namespace is refused by that policy, with a
// status that names it, and nothing is written there.
func scenarioNamespacedConfined(w *world) {
	w.kubectl("beta", "create", "namespace", "elsewhere")
	rev := w.commit("outside", map[string]string{
		"outside/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\ndata:\n  k: v\n",
	})
	w.writeApp("outside", "outside", "elsewhere", "beta")
	w.eventually("app outside refused on beta", func() error {
		c, err := w.app("outside", "beta")
		if err != nil {
			return err
		}
		if c.Sync == "Synced" {
			w.t.Fatalf("app outside is Synced on beta, whose agent may not write namespace elsewhere: %+v", c)
		}
		// Refused by the policy ConfigMap deploy/agent/namespaced ships,
		// before anything reaches the API server.
		want := "namespace elsewhere is not in ConfigMap flotilla-system/flotilla-agent-policy namespaces (team-a, team-b)"
		if c.Revision != rev || !strings.Contains(c.Error+" "+c.Message, want) {
			return fmt.Errorf("not reported as refused by the policy yet: revision %s error %q message %q", c.Revision, c.Error, c.Message)
		}
		w.t.Logf("beta's status for app outside: %s %s", c.Error, c.Message)
		return nil
	})
	if _, err := w.admin["beta"].CoreV1().ConfigMaps("elsewhere").Get(w.t.Context(), "stray", metav1.GetOptions{}); err == nil {
		w.t.Error("ConfigMap elsewhere/stray exists: the namespaced agent wrote outside its namespaces")
	}
	if err := os.Remove(filepath.Join(w.appsDir, "outside.yaml")); err != nil {
		w.t.Fatal(err)
	}
}

// scenarioNetworkCut: alpha's agent container is disconnected from the hub
// network right after a commit, while the hub may be sending it; beta
// converges meanwhile; once the hub shows alpha gone the network is
// connected again and alpha converges too.
func scenarioNetworkCut(w *world) {
	files := map[string]string{"seed/config.yaml": seedConfig("cut")}
	for i := range 50 {
		files[fmt.Sprintf("seed/extra-%02d.yaml", i)] = fmt.Sprintf(
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra-%02d\ndata:\n  payload: %s\n", i, strings.Repeat("x", 4096))
	}
	rev := w.commit("many objects", files)
	w.docker("network", "disconnect", w.hubNet, w.agents["alpha"])
	if err := w.hub.WaitSynced(w.t.Context(), wait, "seed", rev, false, "beta"); err != nil {
		w.t.Fatal(err)
	}
	w.waitConnected("alpha", false)
	w.docker("network", "connect", w.hubNet, w.agents["alpha"])
	w.waitConnected("alpha", true)
	if err := w.hub.WaitSynced(w.t.Context(), wait, "seed", rev, false, "alpha", "beta"); err != nil {
		w.t.Fatal(err)
	}
	for _, cl := range []string{"alpha", "beta"} {
		data, err := w.configMapData(cl, "team-a", "web-config")
		if err != nil || data["greeting"] != "cut" {
			w.t.Fatalf("%s: ConfigMap team-a/web-config: %v %v", cl, data, err)
		}
		if _, err := w.configMapData(cl, "team-a", "extra-49"); err != nil {
			w.t.Fatalf("%s: %v", cl, err)
		}
	}
}

// scenarioAgentRestart: alpha's agent container (read-only root
// filesystem) is restarted; it comes back with the identity it keeps in its
// cluster's Secrets and reverts a drift made while it was down.
func scenarioAgentRestart(w *world) {
	agent := w.agents["alpha"]
	w.docker("stop", agent)
	w.waitConnected("alpha", false)
	w.kubectl("alpha", "-n", "team-a", "scale", "deployment/web", "--replicas=7")
	if ro := w.docker("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", agent); ro != "true" {
		w.t.Fatalf("agent container %s: read-only root %s", agent, ro)
	}
	w.docker("start", agent)
	w.waitConnected("alpha", true)
	w.eventually("alpha: replicas back to 2 after the restart", func() error {
		d, err := w.admin["alpha"].AppsV1().Deployments("team-a").Get(w.t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *d.Spec.Replicas != 2 {
			return fmt.Errorf("replicas %d", *d.Spec.Replicas)
		}
		return nil
	})
}

// scenarioHubReplaced: a backup is taken through the API; the hub container
// is stopped and removed; a new hub container starts on a new state folder
// holding the backup and the CA key, in restore mode. Both agents
// reconnect, every cluster and app is still there, and a commit made after
// the replacement reaches both clusters.
func scenarioHubReplaced(w *world) {
	ctx := w.t.Context()
	// What the hub holds before the backup must all be there after.
	clustersBefore, historyBefore := w.hubRecords()
	if len(historyBefore) == 0 {
		w.t.Fatal("app seed has no history before the backup")
	}
	backup := filepath.Join(w.root, "hub-backup.db")
	if _, err := w.hub.CLI(ctx, "backup", backup); err != nil {
		w.t.Fatal(err)
	}
	w.docker("stop", w.hubCtr)
	_ = w.d.Remove(ctx, w.hubCtr)

	state := w.stateDir("hub-state-restored")
	for src, dst := range map[string]string{backup: "hub.db", filepath.Join(w.hubState, "ca.key"): "ca.key"} {
		data, err := os.ReadFile(src)
		if err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(state, dst), data, 0o600); err != nil {
			w.t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(state, dst), 65532, 65532); err != nil {
			w.t.Fatal(err)
		}
	}
	w.startHub(state, "--restore-mode")
	for _, cl := range []string{"alpha", "beta"} {
		w.waitConnected(cl, true)
	}
	clustersAfter, historyAfter := w.hubRecords()
	if d := cmp.Diff(clustersBefore, clustersAfter); d != "" {
		w.t.Errorf("clusters (name, labels, enrolled) changed by the replacement (-before +after):\n%s", d)
	}
	for id, e := range historyBefore {
		if got, ok := historyAfter[id]; !ok || got != e {
			w.t.Errorf("history entry %d of app seed (%+v) lost or changed by the replacement: %+v", id, e, got)
		}
	}
	rev := w.commit("after the hub was replaced", map[string]string{"seed/config.yaml": seedConfig("restored")})
	if err := w.hub.WaitSynced(ctx, wait, "seed", rev, false, "alpha", "beta"); err != nil {
		w.t.Fatal(err)
	}
	for _, cl := range []string{"alpha", "beta"} {
		data, err := w.configMapData(cl, "team-a", "web-config")
		if err != nil || data["greeting"] != "restored" {
			w.t.Fatalf("%s: ConfigMap team-a/web-config: %v %v", cl, data, err)
		}
	}
}

// clusterRecord and historyRecord are what the hub keeps of a cluster and a
// sync, less what changes on its own (connection, last seen, status).
type clusterRecord struct {
	Labels   map[string]string
	Enrolled bool
}

type historyRecord struct {
	Cluster, Revision, Digest, Result string
}

// hubRecords returns the hub's clusters and app seed's sync history.
func (w *world) hubRecords() (map[string]clusterRecord, map[uint64]historyRecord) {
	w.t.Helper()
	ctx := w.t.Context()
	out, err := w.hub.CLI(ctx, "cluster", "list", "-o", "json")
	if err != nil {
		w.t.Fatal(err)
	}
	var clusters []api.ClusterView
	if err := json.Unmarshal([]byte(out), &clusters); err != nil {
		w.t.Fatalf("cluster list: %v: %s", err, out)
	}
	cs := map[string]clusterRecord{}
	for _, c := range clusters {
		cs[c.Name] = clusterRecord{Labels: c.Labels, Enrolled: c.Enrolled}
	}
	out, err = w.hub.CLI(ctx, "app", "history", "seed", "-o", "json")
	if err != nil {
		w.t.Fatal(err)
	}
	var entries []api.HistoryEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		w.t.Fatalf("app history seed: %v: %s", err, out)
	}
	hs := map[uint64]historyRecord{}
	for _, e := range entries {
		hs[e.ID] = historyRecord{Cluster: e.Cluster, Revision: e.Revision, Digest: e.Digest, Result: e.Result}
	}
	return cs, hs
}
