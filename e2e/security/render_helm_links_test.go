//go:build !unit

package security

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// helmLootChart is finding 1 of the security review: a chart whose files/
// folder is a link to a folder of the repository (box) whose files are
// links through another in-repository link (up, four levels up to stuff):
// `box/x -> ../up/../../../../../admin-token` stays inside the repository
// by its text but, up being a link to a shallow folder, leads four levels
// above the checkout root: the hub's state directory
// (<state>/git/checkouts/<repo>/<commit>). The chart ships every file it
// can read in a ConfigMap's binaryData.
func helmLootChart(dir string) (map[string][]byte, map[string]string) {
	files := map[string][]byte{
		dir + "/Chart.yaml": []byte("apiVersion: v2\nname: loot\nversion: 0.1.0\n"),
		dir + "/templates/loot.yaml": []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: loot
binaryData:
{{- range $path, $_ := .Files.Glob "files/*" }}
  {{ base $path }}: {{ $.Files.Get $path | b64enc }}
{{- end }}
`),
		"stuff/readme.txt":       []byte("an ordinary folder\n"),
		"p/q/r/s/box/readme.txt": []byte("a folder of links\n"),
		"good/Chart.yaml":        []byte("apiVersion: v2\nname: good\nversion: 0.1.0\n"),
		"good/templates/cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  ok: \"yes\"\n"),
	}
	links := map[string]string{
		"p/q/r/s/up":    "../../../../stuff",
		"p/q/r/s/box/x": "../up/../../../../../admin-token",
		"p/q/r/s/box/y": "../up/../../../../../hub.db",
		"p/q/r/s/box/z": "../up/../../../../../ca.key",
		dir + "/files":  "../p/q/r/s/box",
	}
	return files, links
}

// TestRenderHelmChainedLinks replays finding 1 against a real hub, a real
// agent and a real API server: the chart's render must fail with an error
// naming the link, nothing of the hub's state directory (admin token, CA
// private key in hub.db) may reach the cluster or the hub's API, and the
// other chart of the same repository keeps deploying.
func TestRenderHelmChainedLinks(t *testing.T) {
	t.Parallel()
	_, repo := gitRepo(t, "charts")
	files, links := helmLootChart("loot")
	if err := repo.Write(files); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		p := filepath.Join(repo.Work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := repo.CommitAndPush("a chart"); err != nil {
		t.Fatal(err)
	}

	kc := startCluster(t, "victim")
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"loot": "loot", "good": "good"} {
		if err := os.WriteFile(filepath.Join(apps, name+".yaml"), []byte(application(name, repo.URL, path, "team-"+name, "victim")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := startHub(t, apps, plainHTTPFlags()...)
	startAgent(t, h, "victim", kc)
	cs := clientset(t, kc)

	// The control: the repository's other chart deploys through the same
	// hub and agent.
	if err := h.WaitSynced(t.Context(), 2*time.Minute, "good", "", false, "victim"); err != nil {
		t.Fatalf("the good chart did not sync: %v\n%s", err, h.Tail(4000))
	}
	if _, err := cs.CoreV1().ConfigMaps("team-good").Get(t.Context(), "fine", metav1.GetOptions{}); err != nil {
		t.Fatalf("ConfigMap team-good/fine: %v", err)
	}

	// The loot app settles: refused with an error, or (without the fix)
	// deployed.
	var loot api.AppView
	eventually(t, time.Minute, "the loot app settles", func() error {
		a, err := h.App(t.Context(), "loot")
		if err != nil {
			return err
		}
		loot = a
		if e := strings.TrimSpace(appErrors(a)); e != "" && !strings.Contains(e, "waiting for repository") {
			return nil
		}
		if c := a.Cluster("victim"); c != nil && c.Sync == "Synced" {
			return nil
		}
		return fmt.Errorf("app loot: %s", a.Sync)
	})
	if !strings.Contains(appErrors(loot), "p/q/r/s/box/x") {
		t.Errorf("app loot: error %q does not name the link p/q/r/s/box/x", appErrors(loot))
	}

	secrets := stateSecrets(t, h)
	// Whatever the agent was sent is in the cluster by now (the good app
	// synced after the same render pass): nothing may hold the secrets.
	cms, err := cs.CoreV1().ConfigMaps("").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		var blob bytes.Buffer
		for _, v := range cm.Data {
			blob.WriteString(v)
		}
		for _, v := range cm.BinaryData {
			blob.Write(v)
		}
		for what, s := range secrets {
			if bytes.Contains(blob.Bytes(), []byte(s)) {
				t.Errorf("ConfigMap %s/%s holds the hub's %s", cm.Namespace, cm.Name, what)
			}
		}
	}
	if _, err := cs.CoreV1().ConfigMaps("team-loot").Get(t.Context(), "loot", metav1.GetOptions{}); err == nil {
		t.Errorf("ConfigMap team-loot/loot was deployed")
	}
	// Nor anything the hub serves about the app.
	for _, args := range [][]string{{"app", "get", "loot", "-o", "json"}, {"app", "list", "-o", "json"}, {"app", "diff", "loot"}, {"app", "history", "loot"}} {
		out, _ := h.CLI(t.Context(), args...)
		for what, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("flotilla %s shows the hub's %s", strings.Join(args, " "), what)
			}
		}
	}
}

// stateSecrets returns what the chart must never read, by name: the admin
// token and the CA private key's PEM marker.
func stateSecrets(t *testing.T, h *harness.Hub) map[string]string {
	t.Helper()
	// The CA key is in ca.key (hub.db held it before issue 13); the chart
	// links to both.
	db, err := os.ReadFile(filepath.Join(h.StateDir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(h.StateDir, "ca.key"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if !bytes.Contains(db, []byte("PRIVATE KEY")) && !bytes.Contains(key, []byte("PRIVATE KEY")) {
		t.Fatalf("neither hub.db nor ca.key holds a PRIVATE KEY: the test's premise changed, point the chart at the CA key's file")
	}
	return map[string]string{"admin token": h.Token, "CA private key": "PRIVATE KEY"}
}

// application is an Application of path in repo, deployed to namespace on
// cluster.
func application(name, repo, path, namespace, cluster string) string {
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
    automated: {prune: true}
    syncOptions: [CreateNamespace=true]
`, name, repo, path, namespace, cluster)
}

// appErrors joins the app's error and its clusters' errors and messages.
func appErrors(a api.AppView) string {
	parts := []string{a.Error}
	for _, c := range a.Clusters {
		parts = append(parts, c.Error, c.Message)
	}
	return strings.Join(parts, "\n")
}

// plainHTTPFlags are the hub flags the test repositories (served over
// plain http:// on loopback) need.
func plainHTTPFlags() []string {
	return []string{"--allow-insecure-http-repos"}
}

// startCluster starts a minimal real cluster (etcd and kube-apiserver) for
// t and returns its kubeconfig.
func startCluster(t *testing.T, name string) string {
	t.Helper()
	p := &cluster.ProcessProvider{BinDir: controlPlaneBins, WorkDir: t.TempDir(), Logger: hclog.NewNullLogger()}
	return cluster.Start(t, p, name).Kubeconfig()
}

// startAgent registers cluster with h and runs a real agent for it.
func startAgent(t *testing.T, h *harness.Hub, name, kubeconfig string) {
	t.Helper()
	j, err := h.AddCluster(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	a, err := harness.StartAgent(binDir, t.TempDir(), kubeconfig, j)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent %s log:\n%s", name, a.Tail(6000))
		}
		a.Stop()
	})
}

func clientset(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}
