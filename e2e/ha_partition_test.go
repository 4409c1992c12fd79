//go:build !unit

package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestHAPartition: three hub replicas on one management API server
// (--store=kubernetes), replica 3 reaching it through a TCP proxy the test
// cuts (every open connection closed, new ones refused), with every agent
// on replica 3 when the cut comes.
//   - The cut replica fails /readyz and, once its heartbeat Lease was not
//     renewed within its TTL, closes its agent streams; its agents attach
//     to the other replicas and are Synced there, also at a commit made
//     during the cut.
//   - No split-brain write: the statuses the cut replica received and
//     could not store (its agents reported a commit to it during the cut)
//     are never written once their streams ended: after the link heals
//     and the replica has nothing left to write, the store still holds the
//     agents' later reports (same revision, an observation time no
//     older); every cluster's connectedTo names the replica that holds
//     its stream and each cluster's newest history entry is the newest
//     commit.
//   - Healed, the replica is ready again and answers like the others.
func TestHAPartition(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	dir := t.TempDir()
	prov := &cluster.ProcessProvider{BinDir: controlPlaneBins, WorkDir: filepath.Join(dir, "clusters")}
	all := cluster.StartAll(t, prov, "mgmt", "w1", "w2")
	mgmt, workloads := all[0], all[1:]
	const ns = "flotilla"
	mgmtClient := kubernetes.NewForConfigOrDie(mgmt.RESTConfig())
	if _, err := mgmtClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(mgmt.RESTConfig())
	_, repo := gitserver.StartT(t, dir, "config")
	appsDir := filepath.Join(dir, "apps")
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Heartbeat every 10 s (TTL 30 s): the cut replica keeps its streams
	// at least that long, time for its agents to report the commit of the
	// cut to it.
	hubs, lb, apiProxy := startHAReplicas(t, mgmt, dir, appsDir, ns, "--ha-heartbeat-interval", "10s")
	cut := hubs[2]

	clusters := []string{"w1", "w2"}
	rev := commitTo(t, repo, hubs[0], "v1")
	if err := os.WriteFile(filepath.Join(appsDir, "ha.yaml"), []byte(appSpec{name: "ha", path: "ha", ns: "ha", clusters: clusters, prune: true}.yaml(repo.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every agent attaches to replica 3 first: the balancer has only it
	// until they are all there.
	lb.Add(cut.AgentAddr)
	for i, name := range clusters {
		j, err := hubs[i].AddCluster(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		a, err := harness.StartAgent(binDir, dir, workloads[i].Kubeconfig(), j)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Stop)
	}
	waitFleet(t, hubs, rev, clusters)
	waitAttached(t, []*harness.Hub{cut}, len(clusters))
	lb.Add(hubs[0].AgentAddr)
	lb.Add(hubs[1].AgentAddr)

	// Cut. A commit announced to replicas 1 and 3 reaches the agents
	// through replica 3 while it still holds their streams: they apply it
	// and report to replica 3, which cannot store the reports (its API
	// answers 503 meanwhile: it cannot check tokens).
	apiProxy.SetDrop(true)
	rev = commitTo(t, repo, hubs[0], "v2-during-cut")
	if err := cut.PushWebhook(ctx, repo.URL); err != nil {
		t.Fatal(err)
	}
	for i, c := range clusters {
		wl := kubernetes.NewForConfigOrDie(workloads[i].RESTConfig())
		if err := harness.Eventually(ctx, 60*time.Second, 100*time.Millisecond, func() error {
			cm, err := wl.CoreV1().ConfigMaps("ha").Get(ctx, "ha", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := cm.Data["release"]; got != "v2-during-cut" {
				return fmt.Errorf("ConfigMap ha on %s at release %q", c, got)
			}
			return nil
		}); err != nil {
			t.Fatalf("the agents did not apply the commit of the cut: %v", err)
		}
	}
	waitLogged(t, cut, "store status: will retry", clusters)

	// It fails readiness at once (3 s without an answer) and closes its
	// streams once its heartbeat was not renewed within its TTL (30 s),
	// spread over an interval (10 s): well inside these deadlines.
	if err := harness.Eventually(ctx, 60*time.Second, 100*time.Millisecond, func() error {
		if code := readyz(cut); code == http.StatusOK {
			return fmt.Errorf("hub3 still ready")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, cut, "lost the store: closing every agent stream", nil)
	// Its agents move to the others (each agent holds one stream, so
	// hub3 holds none) and are Synced there.
	waitAttached(t, hubs[:2], len(clusters))
	waitFleet(t, hubs[:2], rev, clusters)
	// A commit during the cut, to replica 1 only.
	rev = commitTo(t, repo, hubs[0], "v3-during-cut")
	waitFleet(t, hubs[:2], rev, clusters)
	before := storedStatuses(t, dyn, ns, "ha")
	for _, c := range clusters {
		if st := before[c]; st == nil || st.GetRevision() != rev {
			t.Fatalf("stored status of ha on %s: %v; want revision %.8s", c, st, rev)
		}
	}

	// Heal: the replica is ready again, sees what the others wrote and
	// answers like them.
	apiProxy.SetDrop(false)
	if err := harness.Eventually(ctx, 60*time.Second, 100*time.Millisecond, func() error {
		if code := readyz(cut); code != http.StatusOK {
			return fmt.Errorf("hub3 /readyz %d", code)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Nothing is left to write on the healed replica: its reports of v2,
	// whose streams ended, are dropped, not written over the newer ones.
	if err := harness.Eventually(ctx, 120*time.Second, 200*time.Millisecond, func() error {
		n, ok := hubMetric(t, cut, "flotilla_hub_status_writes_pending")
		if !ok || n != 0 {
			return fmt.Errorf("hub3: %v statuses waiting to be written (metric read: %v)", n, ok)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFleet(t, hubs, rev, clusters)
	// No split-brain write: the store holds each agent's report of the
	// commit made during the cut, observed no earlier than the one stored
	// before the heal.
	after := storedStatuses(t, dyn, ns, "ha")
	for _, c := range clusters {
		st := after[c]
		if st == nil || st.GetRevision() != rev {
			t.Errorf("stored status of ha on %s after the heal: %v; want revision %.8s", c, st, rev)
			continue
		}
		if st.GetObservedAt().AsTime().Before(before[c].GetObservedAt().AsTime()) {
			t.Errorf("stored status of ha on %s observed at %v, before the one stored during the cut (%v): an older report overwrote a newer one",
				c, st.GetObservedAt().AsTime(), before[c].GetObservedAt().AsTime())
		}
	}

	// A commit announced to the healed replica only: every replica and
	// agent converge on it.
	rev = commitTo(t, repo, cut, "v4-after-heal")
	waitFleet(t, hubs, rev, clusters)
	// Each cluster's connectedTo names the replica holding its stream, and
	// its newest history entry of ha is the newest commit.
	if err := harness.Eventually(ctx, 60*time.Second, 200*time.Millisecond, func() error {
		held := map[string]int{}
		for i, h := range hubs {
			held[fmt.Sprintf("hub%d", i+1)] = connectedAgents(t, h)
		}
		holders := storedHolders(t, dyn, ns)
		counts := map[string]int{}
		for _, c := range clusters {
			counts[holders[c]]++
		}
		for id, n := range counts {
			if held[id] != n {
				return fmt.Errorf("connectedTo: %d clusters name %q, which holds %d streams (streams per replica %v, connectedTo %v)", n, id, held[id], held, holders)
			}
		}
		for _, c := range clusters {
			var hist api.ListResponse[api.HistoryEntry]
			if err := hubs[1].DoJSON(ctx, http.MethodGet, "/api/v1/apps/ha/history?cluster="+c, nil, &hist); err != nil {
				return err
			}
			if len(hist.Items) == 0 {
				return fmt.Errorf("no history of ha on %s", c)
			}
			newest := slices.MaxFunc(hist.Items, func(a, b api.HistoryEntry) int { return a.FinishedAt.Compare(b.FinishedAt) })
			if newest.Revision != rev {
				return fmt.Errorf("newest history entry of ha on %s is at %.8s, want %.8s", c, newest.Revision, rev)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// hubMetric reads an unlabelled metric from h's /metrics; false when h
// does not answer or has no such metric.
func hubMetric(t *testing.T, h *harness.Hub, name string) (float64, bool) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.HTTPURL+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	req.Header.Set("Authorization", "Bearer "+h.Token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// readyz returns h's /readyz status code (0 when it does not answer).
func readyz(h *harness.Hub) int {
	resp, err := httpClient.Get(h.HTTPURL + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitLogged waits until h's log has a line with msg for each cluster (at
// least one line when clusters is empty).
func waitLogged(t *testing.T, h *harness.Hub, msg string, clusters []string) {
	t.Helper()
	err := harness.Eventually(t.Context(), 120*time.Second, 200*time.Millisecond, func() error {
		f, err := os.Open(h.LogPath)
		if err != nil {
			return err
		}
		defer f.Close()
		seen, found := map[string]bool{}, false
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, msg) {
				continue
			}
			found = true
			for _, c := range clusters {
				if strings.Contains(line, "cluster="+c+" ") || strings.HasSuffix(line, "cluster="+c) {
					seen[c] = true
				}
			}
		}
		if !found {
			return fmt.Errorf("no %q in %s's log", msg, h.HTTPURL)
		}
		for _, c := range clusters {
			if !seen[c] {
				return fmt.Errorf("no %q for cluster %s in %s's log", msg, c, h.HTTPURL)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	storeStatuses = schema.GroupVersionResource{Group: "hub.flotilla.dev", Version: "v1alpha1", Resource: "clusterstatuses"}
	storeClusters = schema.GroupVersionResource{Group: "hub.flotilla.dev", Version: "v1alpha1", Resource: "clusters"}
)

// storedStatuses reads app's status on every cluster from the Kubernetes
// store's ClusterStatus objects, as the API server has them.
func storedStatuses(t *testing.T, dyn dynamic.Interface, ns, app string) map[string]*apiv1alpha1.AppStatus {
	t.Helper()
	list, err := dyn.Resource(storeStatuses).Namespace(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*apiv1alpha1.AppStatus{}
	for _, o := range list.Items {
		var page struct {
			Spec struct {
				Cluster string            `json:"cluster"`
				Apps    map[string]string `json:"apps"`
			} `json:"spec"`
		}
		b, _ := json.Marshal(o.Object)
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		enc, ok := page.Spec.Apps[app]
		if !ok {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatal(err)
		}
		st := new(apiv1alpha1.AppStatus)
		if err := proto.Unmarshal(data, st); err != nil {
			t.Fatal(err)
		}
		out[page.Spec.Cluster] = st
	}
	return out
}

// storedHolders reads every cluster's connectedTo from the store.
func storedHolders(t *testing.T, dyn dynamic.Interface, ns string) map[string]string {
	t.Helper()
	list, err := dyn.Resource(storeClusters).Namespace(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range list.Items {
		var c struct {
			Spec struct {
				Name        string `json:"name"`
				ConnectedTo string `json:"connectedTo"`
			} `json:"spec"`
		}
		b, _ := json.Marshal(o.Object)
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		out[c.Spec.Name] = c.Spec.ConnectedTo
	}
	return out
}
