//go:build !unit

package conformance

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/testsupport/chartrepo"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// ClusterName is the name the suite's cluster is enrolled under.
const ClusterName = "conformance"

var (
	// binDir holds flotilla-hub, flotilla-render, flotilla and flotilla-agent:
	// $FLOTILLA_E2E_BIN_DIR (the Makefile passes bin/), else built into a
	// temporary folder once.
	binDir string
	// controlPlaneBins holds etcd, kube-apiserver and the rest (make bins).
	controlPlaneBins string

	shared struct {
		once sync.Once
		s    *Suite
		err  error
		stop func()
	}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// make unit: every test here runs hub and agent processes
		// against a control plane.
		fmt.Println("conformance suite: end-to-end, not run by -short")
		return 0
	}
	_, file, _, _ := runtime.Caller(0)
	bins, cp, cleanup, err := harness.TestBinaries(filepath.Dir(filepath.Dir(filepath.Dir(file))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	binDir, controlPlaneBins = bins, cp
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	return code
}

// Suite is what every case shares: one full process cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok, so
// Deployments roll out and Jobs complete), a git server, a hub following a
// folder of definitions (with kustomize remote bases on), and an agent
// enrolled for the cluster. Cases stay
// apart by using an app, a repository and a namespace of their own.
type Suite struct {
	Hub     *harness.Hub
	Agent   *harness.Agent
	Git     *gitserver.Server
	Cluster cluster.Cluster
	// Kube and Dynamic are admin clients of the cluster.
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	AppsDir string
	// Registry is an OCI registry (CNCF Distribution over TLS with
	// htpasswd) the hub has credentials and the CA for.
	Registry *chartrepo.Registry
	dir      string
}

// Env returns the suite, starting it on first use. A suite that failed to
// start fails every case that asks for it.
func Env(t *testing.T) *Suite {
	t.Helper()
	shared.once.Do(func() { shared.s, shared.err = start() })
	if shared.err != nil {
		t.Fatalf("conformance suite: %v", shared.err)
	}
	return shared.s
}

func start() (_ *Suite, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "flotilla-conformance-")
	if err != nil {
		return nil, err
	}
	var stops []func()
	shared.stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		// FLOTILLA_CONFORMANCE_KEEP keeps the suite's folder (hub, agent
		// and registry state and logs) for debugging.
		if os.Getenv("FLOTILLA_CONFORMANCE_KEEP") == "" {
			os.RemoveAll(dir)
		}
	}
	s := &Suite{dir: dir, AppsDir: filepath.Join(dir, "apps")}
	if err := os.MkdirAll(s.AppsDir, 0o755); err != nil {
		return nil, err
	}
	p := &cluster.ProcessProvider{BinDir: controlPlaneBins, WorkDir: dir, Full: true, Logger: hclog.NewNullLogger()}
	c, err := p.Create(ctx, ClusterName)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	stops = append(stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(ctx)
	})
	s.Cluster = c
	if s.Kube, err = kubernetes.NewForConfig(c.RESTConfig()); err != nil {
		return nil, err
	}
	if s.Dynamic, err = dynamic.NewForConfig(c.RESTConfig()); err != nil {
		return nil, err
	}
	if s.Git, err = gitserver.Start(filepath.Join(dir, "git")); err != nil {
		return nil, err
	}
	stops = append(stops, func() { s.Git.Close() })
	hubDir := filepath.Join(dir, "hub")
	if err := os.MkdirAll(hubDir, 0o755); err != nil {
		return nil, err
	}
	regDir := filepath.Join(dir, "registry")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		return nil, err
	}
	reg, stopReg, err := chartrepo.RunRegistry(binDir, regDir, "ci", rand.Text())
	if err != nil {
		return nil, fmt.Errorf("OCI registry: %w", err)
	}
	stops = append(stops, stopReg)
	s.Registry = reg
	creds, err := registryCredentials(hubDir, reg)
	if err != nil {
		return nil, err
	}
	extra := []string{"--git-credentials-file", creds, "--git-ca-file", reg.CAFile(), "--kustomize-remote-bases"}
	if s.Hub, err = harness.StartHub(ctx, binDir, hubDir, harness.HubOptions{AppsDir: s.AppsDir, Extra: extra}); err != nil {
		return nil, err
	}
	stops = append(stops, s.Hub.Stop)
	join, err := s.Hub.AddCluster(ctx, ClusterName)
	if err != nil {
		return nil, err
	}
	agentDir := filepath.Join(dir, "agent")
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		return nil, err
	}
	if s.Agent, err = harness.StartAgent(binDir, agentDir, c.Kubeconfig(), join); err != nil {
		return nil, err
	}
	stops = append(stops, s.Agent.Stop)
	return s, nil
}

// Case is one app of the suite with its own repository; its namespace is
// its name.
type Case struct {
	S         *Suite
	Name      string
	Namespace string
	Repo      *gitserver.Repo
	// Annotations go on the Application ArgoApplication writes, e.g.
	// {"flotilla.dev/scope-cluster-scoped": "true"} for an app that creates
	// cluster-scoped objects (by default an app may not; docs/security.md).
	Annotations map[string]string
	t           *testing.T
}

// NewCase makes the repository of app name (empty until Commit). The app's
// definition is written by Define, and removed when t ends.
func NewCase(t *testing.T, name string) *Case {
	t.Helper()
	s := Env(t)
	repo, err := s.Git.NewRepo(name, filepath.Join(s.dir, "work", name))
	if err != nil {
		t.Fatal(err)
	}
	c := &Case{S: s, Name: name, Namespace: name, Repo: repo, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log:\n%s\nagent log:\n%s", s.Hub.Tail(6000), s.Agent.Tail(6000))
		}
		os.Remove(filepath.Join(s.AppsDir, name+".yaml"))
	})
	return c
}

// Commit writes files (path → content) into the repository, commits and
// pushes them, tells the hub through its webhook, and returns the commit.
func (c *Case) Commit(files map[string]string) string {
	c.t.Helper()
	b := make(map[string][]byte, len(files))
	for k, v := range files {
		b[k] = []byte(v)
	}
	if err := c.Repo.Write(b); err != nil {
		c.t.Fatal(err)
	}
	rev, err := c.Repo.CommitAndPush("conformance " + c.Name)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.S.Hub.PushWebhook(c.t.Context(), c.Repo.URL); err != nil {
		c.t.Fatal(err)
	}
	return rev
}

// Define writes the app's definition into the hub's folder.
func (c *Case) Define(doc string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.S.AppsDir, c.Name+".yaml"), []byte(doc), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// ArgoApplication is an Argo CD Application for the case, as an Argo CD
// user writes it: source path in its repository at main, destination the
// suite's cluster by name and the case's namespace, automated sync with
// prune and self-heal, and CreateNamespace; c.Annotations on it. extra is
// YAML indented under spec (e.g. "  ignoreDifferences: [...]\n"),
// appended as is.
func (c *Case) ArgoApplication(path, extra string) string {
	ann, err := json.Marshal(c.Annotations)
	if err != nil {
		c.t.Fatal(err)
	}
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  annotations: %s
spec:
  project: default
  source:
    repoURL: %s
    targetRevision: main
    path: %s
  destination:
    name: %s
    namespace: %s
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
%s`, c.Name, ann, c.Repo.URL, path, ClusterName, c.Namespace, extra)
}

// WaitSynced waits until the app is Synced (and Healthy when healthy) on
// the suite's cluster at revision rev ("" for any).
func (c *Case) WaitSynced(rev string, healthy bool) {
	c.t.Helper()
	if err := c.S.Hub.WaitSynced(c.t.Context(), 3*time.Minute, c.Name, rev, healthy, ClusterName); err != nil {
		c.t.Fatalf("app %s: %v", c.Name, err)
	}
}

// Eventually polls cond until it returns nil or timeout passes.
func (c *Case) Eventually(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	if err := harness.Eventually(c.t.Context(), timeout, 100*time.Millisecond, cond); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// App returns the app as `flotilla app get -o json` shows it.
func (c *Case) App() api.AppView {
	c.t.Helper()
	a, err := c.S.Hub.App(c.t.Context(), c.Name)
	if err != nil {
		c.t.Fatal(err)
	}
	return a
}

// Errors joins the app's error and its cluster's error and message.
func Errors(a api.AppView) string {
	parts := []string{a.Error}
	for _, cl := range a.Clusters {
		parts = append(parts, cl.Error, cl.Message)
	}
	return strings.TrimSpace(strings.Join(parts, "\n"))
}

// WebDeployment is a Deployment named web with one container (its image is
// never pulled: kwok runs the pods). metadata is YAML added under metadata
// (each line indented two spaces, e.g. "  annotations: {...}\n"); without
// replicas the field is left out, for an HPA to own.
func WebDeployment(metadata string, replicas bool) string {
	r := "  replicas: 1\n"
	if !replicas {
		r = ""
	}
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
` + metadata + `spec:
` + r + `  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
`
}

// registryCredentials writes the hub's credentials file for the registry
// (chart repositories share the git credentials file; an oci:// repository
// matches the https:// prefix of its host and path).
func registryCredentials(dir string, reg *chartrepo.Registry) (string, error) {
	token := filepath.Join(dir, "registry-token")
	if err := os.WriteFile(token, []byte(reg.Pass), 0o600); err != nil {
		return "", err
	}
	f := filepath.Join(dir, "credentials.yaml")
	doc := fmt.Sprintf("credentials:\n- url: https://%s/charts/\n  username: %s\n  tokenFile: %s\n", reg.Host, reg.User, token)
	return f, os.WriteFile(f, []byte(doc), 0o600)
}
