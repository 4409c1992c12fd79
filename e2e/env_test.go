//go:build !unit

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// env is one e2e world: clusters, a git server with a config repo, a hub
// and one enrolled agent per cluster.
type env struct {
	// t is the running (sub)test; root is the test that owns the clusters,
	// hub and agents, whose cleanups outlive any subtest.
	t        *testing.T
	root     *testing.T
	prov     cluster.Provider
	dir      string
	repo     *gitserver.Repo
	appsDir  string
	hub      *harness.Hub
	clusters map[string]cluster.Cluster
	clients  map[string]kubernetes.Interface
	agents   map[string]*harness.Agent
	// dumps counts failure dumps, so that a failed test whose subtest
	// already printed everything does not print it again.
	dumps *int
}

// newEnv starts clusters named names, a git server, and a hub reading
// Application definitions from a local folder; agents are not started.
func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, root: t, dir: dir, clusters: map[string]cluster.Cluster{}, clients: map[string]kubernetes.Interface{}, agents: map[string]*harness.Agent{}}
	prov, err := cluster.ProviderFromEnv(controlPlaneBins, "")
	if err != nil {
		t.Fatal(err)
	}
	e.prov = prov
	for _, c := range cluster.StartAll(t, prov, names...) {
		e.setCluster(c)
	}
	_, e.repo = gitserver.StartT(t, dir, "config")
	e.appsDir = filepath.Join(dir, "apps")
	if err := os.MkdirAll(e.appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.dumps = new(int)
	t.Cleanup(func() {
		if t.Failed() && *e.dumps == 0 {
			e.dumpLogs()
			e.dumpClusters()
		}
	})
	return e
}

// sub returns the env for subtest t: the same world, with failures and
// short-lived cleanups going to t. When t fails, its cleanup prints the
// logs and the clusters' state.
func (e *env) sub(t *testing.T) *env {
	c := *e
	c.t = t
	before := *e.dumps
	t.Cleanup(func() {
		if t.Failed() && *e.dumps == before {
			c.dumpLogs()
			c.dumpClusters()
			*e.dumps++
		}
	})
	return &c
}

// setCluster makes c the cluster of its name (a fresh one replaces the
// old in disaster recovery).
func (e *env) setCluster(c cluster.Cluster) {
	e.t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	e.clusters[c.Name()] = c
	e.clients[c.Name()] = cs
}

func (e *env) startHub(o harness.HubOptions) {
	e.t.Helper()
	o.AppsDir = e.appsDir
	h, err := harness.StartHub(e.t.Context(), binDir, e.dir, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.hub = h
	e.root.Cleanup(func() { e.hub.Stop() })
}

// enroll registers cluster name with labels through the CLI and starts its
// agent with the printed join data.
func (e *env) enroll(name string, labels ...string) *harness.Agent {
	e.t.Helper()
	j, err := e.hub.AddCluster(e.t.Context(), name, labels...)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := harness.StartAgent(binDir, e.dir, e.clusters[name].Kubeconfig(), j)
	if err != nil {
		e.t.Fatal(err)
	}
	e.agents[name] = a
	e.root.Cleanup(func() { e.agents[name].Stop() })
	return a
}

// writeApp writes an Application definition into the hub's apps folder.
func (e *env) writeApp(name, yaml string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.appsDir, name+".yaml"), []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// commit writes files into the config repo and pushes them, then sends the
// hub a signed-less GitHub push webhook, as a git host would.
func (e *env) commit(msg string, files map[string]string) string {
	e.t.Helper()
	m := map[string][]byte{}
	for k, v := range files {
		if v == "" {
			m[k] = nil
		} else {
			m[k] = []byte(v)
		}
	}
	if err := e.repo.Write(m); err != nil {
		e.t.Fatal(err)
	}
	rev, err := e.repo.CommitAndPush(msg)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.hub != nil {
		e.webhook()
	}
	return rev
}

func (e *env) webhook() {
	e.t.Helper()
	req, err := e.hub.WebhookRequest(e.t.Context(), e.repo.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		e.t.Fatalf("webhook answered %d", resp.StatusCode)
	}
}

// waitDeployment waits until the Deployment has want replicas specified and
// available (available < 0: do not wait for availability).
func (e *env) waitDeployment(clusterName, ns, name string, replicas int32, available bool) {
	e.t.Helper()
	cs := e.clients[clusterName]
	err := harness.Eventually(e.t.Context(), 90*time.Second, 100*time.Millisecond, func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(e.t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
			return fmt.Errorf("%s: deployment %s/%s has %v replicas, want %d", clusterName, ns, name, d.Spec.Replicas, replicas)
		}
		if available && d.Status.AvailableReplicas != replicas {
			return fmt.Errorf("%s: deployment %s/%s has %d available, want %d", clusterName, ns, name, d.Status.AvailableReplicas, replicas)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) dumpLogs() {
	if e.hub != nil {
		e.t.Logf("=== hub log (tail) ===\n%s", e.hub.Tail(20000))
		if out, err := e.hub.CLI(context.WithoutCancel(e.t.Context()), "app", "list"); err == nil {
			e.t.Logf("=== flotilla app list ===\n%s", out)
		}
	}
	for name, a := range e.agents {
		e.t.Logf("=== agent %s log (tail) ===\n%s", name, a.Tail(20000))
	}
}

func webApp(name, repo, path, ns string, clusters []string, selfHeal bool) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata:
  name: %s
spec:
  source:
    repoURL: %s
    targetRevision: main
    path: %s
  destination:
    namespace: %s
    clusters: [%s]
  syncPolicy:
    automated: {prune: true, selfHeal: %t}
    syncOptions: [CreateNamespace=true]
`, name, repo, path, ns, strings.Join(clusters, ", "), selfHeal)
}

func deployment(name string, replicas int, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {app: %[1]s}
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: web
        image: %[3]s
        ports:
        - containerPort: 80
`, name, replicas, image)
}

func service(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports:
  - port: 80
    targetPort: 80
`, name)
}

// parallel runs t beside the package's other top-level tests: each starts
// its own clusters, hub and agents, and most of their time is spent waiting
// on those processes. Not under the kind provider, whose clusters are named
// after the test's cluster names, which repeat across tests.
func parallel(t *testing.T) {
	if os.Getenv(cluster.EnvProvider) != "kind" {
		t.Parallel()
	}
}
