//go:build !unit

package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// Size of the large app: bigObjects ConfigMaps of bigObjectBytes random
// base64 each, about 6.4 MB of objects and 4.8 MB compressed, above gRPC's
// default 4 MiB message size.
const (
	bigObjects     = 400
	bigObjectBytes = 16 << 10
)

// scenarioAgentFaults: beta's agent is run behind two TCP proxies the test
// controls, one to the hub and one to its API server. It is killed with
// SIGKILL while applying a large bundle (the API server link slowed so the
// sync is surely in flight) and restarted; then its link to the hub is
// dropped and, once a commit is waiting, restored with added latency.
// Everything converges once healed, and beta's usual agent takes over
// again at the end.
func scenarioAgentFaults(e *env) {
	const cl = "beta"
	orig := e.agents[cl]
	orig.Stop()
	defer func() {
		// Back to beta's usual agent, straight to the hub and API server.
		e.agents[cl].Stop()
		if err := orig.Restart(); err != nil {
			e.t.Fatal(err)
		}
		e.agents[cl] = orig
		e.waitConnected(e.hub, cl, true)
	}()

	kubeProxy, kubeconfig := e.proxiedKubeconfig(cl)
	defer kubeProxy.Close()
	hubProxy, err := harness.StartProxy(e.hub.AgentAddr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer hubProxy.Close()
	dir := filepath.Join(e.dir, "faults")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	a, err := harness.StartAgent(binDir, dir, kubeconfig, harness.Join{Cluster: cl, HubAddr: hubProxy.Addr})
	if err != nil {
		e.t.Fatal(err)
	}
	e.agents[cl] = a
	e.root.Cleanup(a.Kill)
	e.waitConnected(e.hub, cl, true)

	meta, err := metadata.NewForConfig(e.clusters[cl].RESTConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	cmGVR := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	countBig := func() (int, error) {
		l, err := meta.Resource(cmGVR).Namespace("big").List(e.t.Context(), metav1.ListOptions{LabelSelector: "flotilla-e2e=big"})
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	}

	// git sends a push larger than http.postBuffer (1 MiB) chunked, which
	// the CGI git server refuses (HTTP 400); buffer it whole instead.
	if out, err := exec.Command("git", "-C", e.repo.Work, "config", "http.postBuffer", "67108864").CombinedOutput(); err != nil {
		e.t.Fatalf("git config: %v: %s", err, out)
	}

	e.t.Run("KilledMidSync", func(t *testing.T) {
		e := e.sub(t)
		files := map[string]string{}
		for i := range bigObjects {
			files[fmt.Sprintf("big/cm-%03d.yaml", i)] = bigConfigMap(t, i, "v1")
		}
		// Slow API server link: the large sync takes seconds, not
		// milliseconds, so the kill lands in the middle of it.
		kubeProxy.SetLatency(50 * time.Millisecond)
		rev := e.commit("big: 400 configmaps", files)
		e.writeApp("big", appSpec{name: "big", path: "big", ns: "big", clusters: []string{cl}, prune: true, selfHeal: true}.yaml(e.repo.URL))
		var atKill int
		e.eventually("some but not all big configmaps applied", func() error {
			n, err := countBig()
			if err != nil {
				return err
			}
			if n < 10 {
				return fmt.Errorf("%d of %d applied", n, bigObjects)
			}
			if n == bigObjects {
				// Too late to kill mid-sync: fail rather than pass for the
				// wrong reason.
				return nil
			}
			a.Kill()
			atKill = n
			return nil
		})
		if atKill == 0 {
			t.Fatalf("the sync of %d objects finished before the agent could be killed; slow the API server link more", bigObjects)
		}
		after, _ := countBig()
		t.Logf("agent killed (SIGKILL) with %d of %d configmaps applied (%d a moment later)", atKill, bigObjects, after)

		kubeProxy.SetLatency(0)
		start := time.Now()
		if err := a.Restart(); err != nil {
			t.Fatal(err)
		}
		e.eventually("every big configmap applied after the restart", func() error {
			n, err := countBig()
			if err != nil {
				return err
			}
			if n != bigObjects {
				return fmt.Errorf("%d of %d applied", n, bigObjects)
			}
			return nil
		})
		e.waitSynced("big", rev, cl)
		t.Logf("converged %s after the restart", time.Since(start).Round(time.Millisecond))
	})

	e.t.Run("LinkDroppedAndDelayed", func(t *testing.T) {
		e := e.sub(t)
		hubProxy.SetDrop(true)
		e.waitConnected(e.hub, cl, false)
		rev := e.commit("big: cm-000 v2", map[string]string{"big/cm-000.yaml": bigConfigMap(t, 0, "v2")})
		e.waitApp("big", "hub at the new revision", func(a api.AppView) error {
			if a.Revision != rev {
				return fmt.Errorf("revision %s", a.Revision)
			}
			return nil
		})
		if d, err := e.configMapData(cl, "big", "cm-000"); err != nil || d["release"] != "v1" {
			t.Fatalf("cm-000 changed while the agent was cut off: %v %v", d["release"], err)
		}
		// Heal the link, but slow: 300 ms each way for every chunk.
		hubProxy.SetLatency(300 * time.Millisecond)
		hubProxy.SetDrop(false)
		start := time.Now()
		e.waitConnected(e.hub, cl, true)
		e.eventually("cm-000 at v2 over the slow link", func() error {
			d, err := e.configMapData(cl, "big", "cm-000")
			if err != nil {
				return err
			}
			if d["release"] != "v2" {
				return fmt.Errorf("release=%q", d["release"])
			}
			return nil
		})
		e.waitSynced("big", rev, cl)
		t.Logf("converged %s after the link came back with 300 ms latency", time.Since(start).Round(time.Millisecond))
		hubProxy.SetLatency(0)
	})
}

// bigConfigMap is ConfigMap cm-NNN of the large app with random data.
func bigConfigMap(t *testing.T, i int, release string) string {
	b := make([]byte, bigObjectBytes*3/4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%03d\n  labels: {flotilla-e2e: big}\ndata:\n  release: %s\n  blob: %s\n", i, release, base64.StdEncoding.EncodeToString(b))
}

// proxiedKubeconfig starts a TCP proxy to cluster's API server and writes
// a copy of its kubeconfig that goes through it.
func (e *env) proxiedKubeconfig(cluster string) (*harness.Proxy, string) {
	e.t.Helper()
	u, err := url.Parse(e.clusters[cluster].RESTConfig().Host)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := harness.StartProxy(u.Host)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(e.clusters[cluster].Kubeconfig())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = strings.Replace(c.Server, u.Host, p.Addr, 1)
	}
	path := filepath.Join(e.dir, cluster+"-proxied.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		e.t.Fatal(err)
	}
	return p, path
}
