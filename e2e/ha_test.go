//go:build !unit

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestHighAvailability: three hub processes share one real management API
// server (--store=kubernetes) behind one agent address (a TCP balancer, as
// a Service is), with agents on three workload clusters.
//   - Clusters added, commits (webhooks) and API writes spread over the
//     replicas converge: every replica answers Synced at the new revision
//     for every cluster, and a token made on one works on the others.
//   - kill -9 of the replica holding the most agents, once per replica
//     while commits keep coming: every agent re-attaches to a survivor and
//     the fleet is Synced at the newest revision; the killed one comes back.
//   - A rolling restart of the three replicas, a commit while each is
//     down, leaves no failed sync.
//   - A replica cut off from the API server fails readiness and closes its
//     streams; its agents move and the fleet stays Synced.
//   - Afterwards no cluster, token, history, audit entry or pin is lost.
func TestHighAvailability(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	dir := t.TempDir()
	prov := &cluster.ProcessProvider{BinDir: controlPlaneBins, WorkDir: filepath.Join(dir, "clusters")}
	all := cluster.StartAll(t, prov, "mgmt", "w1", "w2", "w3")
	mgmt, workloads := all[0], all[1:]
	const ns = "flotilla"
	mgmtClient := kubernetes.NewForConfigOrDie(mgmt.RESTConfig())
	if _, err := mgmtClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gsrv, repo := gitserver.StartT(t, dir, "config")
	roRepo, err := gsrv.NewRepo("rollout", filepath.Join(dir, "work-rollout"))
	if err != nil {
		t.Fatal(err)
	}
	appsDir := filepath.Join(dir, "apps")
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Replica 3 reaches the API server through a proxy the test can cut.
	hubs, lb, apiProxy := startHAReplicas(t, mgmt, dir, appsDir, ns)
	for _, h := range hubs {
		lb.Add(h.AgentAddr)
	}
	var agents []*harness.Agent

	clusters := []string{"w1", "w2", "w3"}
	waves := map[string]string{"w1": "canary", "w2": "wave1", "w3": "wave2"}
	wl := map[string]kubernetes.Interface{}
	for i, name := range clusters {
		wl[name] = kubernetes.NewForConfigOrDie(workloads[i].RESTConfig())
	}
	// "hpin" (on w1) is pinned by a rollback later; "hro" rolls out
	// progressively from its own repository.
	if err := repo.Write(map[string][]byte{"hpin/config.yaml": []byte(cmManifest("hpin", map[string]string{"release": "pinned"}))}); err != nil {
		t.Fatal(err)
	}
	rev := commitTo(t, repo, hubs[0], "v1")
	roV1 := commitRepo(t, roRepo, hubs[0], map[string]string{"hro/config.yaml": cmManifest("hro", map[string]string{"release": "v1"})}, "hro v1")
	for name, spec := range map[string]string{
		"ha":   appSpec{name: "ha", path: "ha", ns: "ha", clusters: clusters, prune: true}.yaml(repo.URL),
		"hpin": appSpec{name: "hpin", path: "hpin", ns: "hpin", clusters: []string{"w1"}, prune: true}.yaml(repo.URL),
		"hro":  haRolloutApp(roRepo.URL),
	} {
		if err := os.WriteFile(filepath.Join(appsDir, name+".yaml"), []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Each cluster is added through another replica; agents dial the
	// balancer.
	for i, name := range clusters {
		j, err := hubs[i].AddCluster(ctx, name, "ring=ha", "wave="+waves[name])
		if err != nil {
			t.Fatal(err)
		}
		a, err := harness.StartAgent(binDir, dir, workloads[i].Kubeconfig(), j)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Stop)
		agents = append(agents, a)
	}
	live := []*harness.Hub{hubs[0], hubs[1], hubs[2]}
	waitFleet(t, live, rev, clusters)
	for _, h := range hubs {
		if err := h.WaitSynced(ctx, 120*time.Second, "hro", roV1, true, clusters...); err != nil {
			t.Fatalf("%s: %v", h.HTTPURL, err)
		}
	}
	// Every replica says every agent is connected, whichever holds it.
	allConnected := map[string]bool{"w1": true, "w2": true, "w3": true}
	waitPresence(t, hubs, allConnected)
	// A rollback pin made on replica 2 (hpin on w1 stays at this revision
	// through every later commit, kill and restart).
	pinned := rev
	var rb api.RollbackResponse
	if err := hubs[1].DoJSON(ctx, http.MethodPost, "/api/v1/apps/hpin/rollback", api.RollbackRequest{Revision: pinned, Cluster: "w1"}, &rb); err != nil {
		t.Fatal(err)
	}

	// A commit announced to replica 2 only reaches every replica's agents.
	rev = commitTo(t, repo, hubs[1], "v2")
	waitFleet(t, live, rev, clusters)

	// An API write on one replica is read on the others at once.
	out, err := hubs[2].CLI(ctx, "token", "create", "ci-ha", "--role", "readonly", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	ciToken := jsonField(t, out, "token")
	for _, h := range hubs {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.HTTPURL+"/api/v1/clusters", nil)
		req.Header.Set("Authorization", "Bearer "+ciToken)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: token made on hub3 answered %d", h.HTTPURL, resp.StatusCode)
		}
	}

	// A progressive rollout across the replicas.
	haRollout(t, hubs, mgmtClient, ns, roRepo, roV1, wl)

	// kill -9 of the replica holding the most agents, each replica in turn,
	// with a commit while it is down.
	killed := map[*harness.Hub]bool{}
	for round := range 3 {
		var candidates []*harness.Hub
		for _, h := range live {
			if !killed[h] {
				candidates = append(candidates, h)
			}
		}
		victim := busiest(t, candidates)
		killed[victim] = true
		t.Logf("round %d: kill -9 hub holding %d agents (%s)", round, connectedAgents(t, victim), victim.HTTPURL)
		victim.Kill()
		var rest []*harness.Hub
		for _, h := range live {
			if h != victim {
				rest = append(rest, h)
			}
		}
		start := time.Now()
		rev = commitTo(t, repo, rest[round%len(rest)], fmt.Sprintf("v%d", 3+round))
		waitFleet(t, rest, rev, clusters)
		waitAttached(t, rest, len(clusters))
		waitPresence(t, rest, allConnected)
		t.Logf("round %d: every agent re-attached and Synced at %s %s after the kill", round, rev[:8], time.Since(start).Round(time.Millisecond))
		if err := victim.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFleet(t, live, rev, clusters)

	// Rolling restart (SIGTERM, start again), one replica after the other,
	// under load: a commit and its webhook every second, to the replicas
	// in turn, all along.
	load := startCommitLoad(t, repo, hubs)
	for i, h := range hubs {
		h.Stop()
		var rest []*harness.Hub
		for _, o := range hubs {
			if o != h {
				rest = append(rest, o)
			}
		}
		// Commits keep coming while it is down; its agents move.
		load.wait(t, 3*(i+1))
		waitAttached(t, rest, len(clusters))
		if err := h.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n := load.stop()
	rev = commitTo(t, repo, hubs[0], "v-after-rolling")
	waitFleet(t, live, rev, clusters)
	t.Logf("rolling restart: %d commits made during it", n)

	// Cut replica 3 off the API server: it stops serving, its agents move.
	apiProxy.SetDrop(true)
	if err := harness.Eventually(ctx, 60*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get(hubs[2].HTTPURL + "/readyz")
		if err != nil {
			return nil // down is not ready either
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return fmt.Errorf("hub3 still ready")
		}
		if n := connectedAgents(t, hubs[2]); n != 0 {
			return fmt.Errorf("hub3 still holds %d streams", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rev = commitTo(t, repo, hubs[0], "v-partition")
	waitFleet(t, hubs[:2], rev, clusters)
	waitAttached(t, hubs[:2], len(clusters))
	apiProxy.SetDrop(false)
	waitFleet(t, hubs, rev, clusters)

	// Nothing lost: clusters, tokens, history of every revision, audit,
	// the pin; the rollout's state is the same on every replica.
	waitRolloutEverywhere(t, hubs, "still completed", func(v api.RolloutView) error {
		if v.Phase != "Completed" {
			return fmt.Errorf("phase %s", v.Phase)
		}
		return nil
	})
	for _, h := range hubs {
		av, err := h.App(ctx, "hpin")
		if err != nil {
			t.Fatal(err)
		}
		if c := av.Cluster("w1"); c == nil || c.Pinned != pinned || c.Revision != pinned || av.Revision == pinned {
			t.Errorf("%s: hpin on w1 %+v (app at %.12s); want pinned at %.12s through the kills", h.HTTPURL, c, av.Revision, pinned)
		}
	}
	// No bundle applied twice for one digest: each agent's log has one
	// "synced" line per (app, digest) of ha and hro. (A replica the agent
	// re-attaches to sends the digest it already has, which the agent does
	// not apply again; a re-apply would log "synced" again.)
	for _, a := range agents {
		twice, digests := appliedTwice(t, a.LogPath, "ha", "hro")
		if len(twice) > 0 {
			t.Errorf("agent of %s applied a bundle twice: %v", a.Cluster, twice)
		}
		if digests < 10 {
			t.Errorf("agent of %s logged %d applied digests of ha and hro, want at least 10", a.Cluster, digests)
		}
	}
	for _, h := range hubs {
		out, err := h.CLI(ctx, "cluster", "list", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range clusters {
			if !strings.Contains(out, `"`+c+`"`) {
				t.Errorf("%s: cluster %s missing: %s", h.HTTPURL, c, out)
			}
		}
	}
	for _, c := range clusters {
		out, err := hubs[1].CLI(ctx, "app", "history", "ha", "--cluster", c, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, `"revision"`); n < 9 {
			t.Errorf("history of ha on %s: %d entries, want one per revision (9): %s", c, n, out)
		}
		if strings.Contains(out, `"Failed"`) {
			t.Errorf("a sync of ha on %s failed: %s", c, out)
		}
	}
	out, err = hubs[0].CLI(ctx, "token", "list", "-o", "json")
	if err != nil || !strings.Contains(out, "ci-ha") {
		t.Errorf("token list: %v %s", err, out)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hubs[2].HTTPURL+"/api/v1/audit?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+hubs[2].Token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(body), `"cluster.add"`); n != 3 || !strings.Contains(string(body), `"token.create"`) {
		t.Errorf("audit on hub3: %d cluster.add entries, want 3 and the token.create: %s", n, body)
	}

	// An agent that stops shows disconnected on every replica, with one
	// last-seen time.
	agents[2].Stop()
	waitPresence(t, hubs, map[string]bool{"w1": true, "w2": true, "w3": false})
}

// commitTo pushes a change of the app's ConfigMap and sends the webhook to
// h only; it returns the new revision.
func commitTo(t *testing.T, repo *gitserver.Repo, h *harness.Hub, release string) string {
	t.Helper()
	if err := repo.Write(map[string][]byte{"ha/config.yaml": []byte(cmManifest("ha", map[string]string{"release": release}))}); err != nil {
		t.Fatal(err)
	}
	rev, err := repo.CommitAndPush("ha " + release)
	if err != nil {
		t.Fatal(err)
	}
	req, err := h.WebhookRequest(t.Context(), repo.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	return rev
}

// waitFleet waits until every replica in hubs answers app ha Synced and
// Healthy at rev on every cluster.
func waitFleet(t *testing.T, hubs []*harness.Hub, rev string, clusters []string) {
	t.Helper()
	for _, h := range hubs {
		if err := h.WaitSynced(t.Context(), 120*time.Second, "ha", rev, true, clusters...); err != nil {
			t.Fatalf("%s: %v", h.HTTPURL, err)
		}
	}
}

// waitAttached waits until the replicas hold n agent streams together.
func waitAttached(t *testing.T, hubs []*harness.Hub, n int) {
	t.Helper()
	err := harness.Eventually(t.Context(), 120*time.Second, 100*time.Millisecond, func() error {
		sum := 0
		for _, h := range hubs {
			sum += connectedAgents(t, h)
		}
		if sum != n {
			return fmt.Errorf("%d agents attached, want %d", sum, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func busiest(t *testing.T, hubs []*harness.Hub) *harness.Hub {
	best, most := hubs[0], -1
	for _, h := range hubs {
		if n := connectedAgents(t, h); n > most {
			best, most = h, n
		}
	}
	return best
}

// connectedAgents reads flotilla_hub_connected_agents from h's metrics (0
// when it does not answer).
func connectedAgents(t *testing.T, h *harness.Hub) int {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.HTTPURL+"/metrics", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+h.Token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flotilla_hub_connected_agents "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

func jsonField(t *testing.T, out, field string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, `"`+field+`": "`)
	if !ok {
		_, rest, ok = strings.Cut(out, `"`+field+`":"`)
	}
	v, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		t.Fatalf("no %q in %s", field, out)
	}
	return v
}

// startHAReplicas starts three hub replicas sharing mgmt's API server as
// their store (namespace ns) and advertising one agent address, a
// balancer the caller fills (none of the replicas is added to it). The
// third replica reaches the API server through the returned proxy, which
// the test can cut. extra flags are given to every replica. The replicas
// share the first one's admin token, and their logs are printed when the
// test fails.
func startHAReplicas(t *testing.T, mgmt cluster.Cluster, dir, appsDir, ns string, extra ...string) ([]*harness.Hub, *harness.Balancer, *harness.Proxy) {
	t.Helper()
	apiHost := strings.TrimPrefix(mgmt.RESTConfig().Host, "https://")
	apiProxy, err := harness.StartProxy(apiHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apiProxy.Close)
	proxied := filepath.Join(dir, "mgmt-proxied.kubeconfig")
	kc, err := os.ReadFile(mgmt.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(proxied, []byte(strings.ReplaceAll(string(kc), apiHost, apiProxy.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	lb, err := harness.StartBalancer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Close)
	hubs := make([]*harness.Hub, 3)
	var token string
	for i := range hubs {
		hdir := filepath.Join(dir, fmt.Sprintf("hub%d", i+1))
		if err := os.MkdirAll(hdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if token != "" { // the first replica made the admin token
			if err := os.WriteFile(filepath.Join(hdir, "harness-admin-token"), []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		kubeconfig := mgmt.Kubeconfig()
		if i == 2 {
			kubeconfig = proxied
		}
		args := append([]string{
			"--store=kubernetes", "--kubeconfig", kubeconfig, "--store-namespace", ns, "--store-install-crds",
			"--advertise-addr", lb.Addr, "--ha-identity", fmt.Sprintf("hub%d", i+1),
			"--ha-lease-duration", "4s", "--ha-renew-deadline", "3s", "--ha-retry-period", "1s", "--ha-store-timeout", "3s",
		}, extra...)
		h, err := harness.StartHub(t.Context(), binDir, hdir, harness.HubOptions{AppsDir: appsDir, Extra: args})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Stop)
		hubs[i] = h
		token = h.Token
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, h := range hubs {
				t.Logf("=== hub%d log (tail) ===\n%s", i+1, h.Tail(15000))
			}
		}
	})
	return hubs, lb, apiProxy
}
