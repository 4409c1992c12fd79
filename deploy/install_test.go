//go:build !unit

package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flotilla-cd/flotilla/deploy/internal/manifests"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

const testVersion = "v0.0.0-deploytest"

// TestInstallWalk follows docs/install.md on a test cluster, with the hub and
// the agent as processes of the built binaries (there is no container
// runtime here) run exactly as the manifests run them:
//
//  1. the hub gets the args and FLOTILLA_* environment of deploy/hub's
//     Deployment and ConfigMap; only what an overlay is meant to change (the
//     apps repository, the advertised address) and the listen addresses,
//     state dir and HOME (host paths instead of the pod's) are replaced;
//  2. `flotilla cluster add` registers the cluster, and the install command
//     it prints (kubectl apply -k deploy/agent and the join Secret) is run
//     as printed;
//  3. the agent gets the args and environment of the Deployment kubectl
//     created, with the Secret's values, and talks to the API server as the
//     flotilla-agent ServiceAccount (a TokenRequest token), so it has the
//     manifests' RBAC and nothing more;
//  4. it enrols, stores its identity Secret, and applies an Argo CD
//     Application from git (migration as documented: destination.name);
//  5. with the join token removed from the Secret, a restarted agent
//     reconnects with its stored identity.
func TestInstallWalk(t *testing.T) {
	w := newWalk(t, map[string]string{
		"apps/guestbook.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
spec:
  project: default
  source:
    repoURL: {{REPO}}
    targetRevision: HEAD
    path: guestbook
  destination:
    name: member
    namespace: guestbook
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
`,
		"guestbook/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook-ui\ndata:\n  greeting: hello\n",
	})
	ctx, admin := t.Context(), w.admin

	// 2. Register the cluster and run the install command it prints.
	out := w.cli("cluster", "add", "member", "--label", "env=test")
	_, install, ok := strings.Cut(out, "or install it in the cluster:")
	if !ok || !strings.Contains(install, "kubectl apply -k deploy/agent") {
		t.Fatalf("cluster add printed no install command:\n%s", out)
	}
	w.sh(strings.TrimSpace(install))

	// 3. The agent, as the Deployment just created runs it, with its RBAC.
	agent := w.startAgent()

	// 4. Enrolled, identity stored, the app applied and reported.
	waitFor(t, agent, time.Minute, "identity Secret", func() error {
		sec, err := admin.CoreV1().Secrets(agentNamespace).Get(ctx, "flotilla-agent-identity", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if sec.Type != corev1.SecretTypeTLS {
			return fmt.Errorf("identity Secret type %s", sec.Type)
		}
		return nil
	})
	waitFor(t, agent, 2*time.Minute, "ConfigMap guestbook/guestbook-ui", func() error {
		cm, err := admin.CoreV1().ConfigMaps("guestbook").Get(ctx, "guestbook-ui", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["greeting"] != "hello" {
			return fmt.Errorf("data %v", cm.Data)
		}
		return nil
	})
	w.cli("app", "wait", "guestbook", "--cluster", "member", "--timeout", "2m")
	waitFor(t, agent, 30*time.Second, "agent /readyz", func() error { return httpGet(ctx, "http://"+w.metricsAddr+"/readyz") })
	agentVersion, err := exec.CommandContext(ctx, w.bins["flotilla-agent"], "--version").Output()
	if err != nil {
		t.Fatalf("flotilla-agent --version: %v", err)
	}
	var view struct {
		Connected    bool   `json:"connected"`
		Enrolled     bool   `json:"enrolled"`
		AgentVersion string `json:"agentVersion"`
	}
	if err := json.Unmarshal([]byte(w.cli("cluster", "get", "member", "-o", "json")), &view); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(agentVersion)); !view.Connected || !view.Enrolled || view.AgentVersion != want {
		t.Errorf("cluster get member: %+v, want connected, enrolled, agent version %s", view, want)
	}

	// 5. After enrolment the token may go; the stored identity is enough.
	patch := []byte(`[{"op":"remove","path":"/data/FLOTILLA_JOIN_TOKEN"}]`)
	if _, err := admin.CoreV1().Secrets(agentNamespace).Patch(ctx, "flotilla-agent-join", "application/json-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	agent.Stop()
	if err := admin.CoreV1().ConfigMaps("guestbook").Delete(ctx, "guestbook-ui", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	agent = w.startAgent()
	waitFor(t, agent, 2*time.Minute, "ConfigMap guestbook/guestbook-ui restored", func() error {
		_, err := admin.CoreV1().ConfigMaps("guestbook").Get(ctx, "guestbook-ui", metav1.GetOptions{})
		return err
	})
	w.cli("app", "wait", "guestbook", "--cluster", "member", "--timeout", "2m")
}

const agentNamespace = "flotilla-system"

// walk is a hub started from deploy/hub's manifests, following a config
// repository served over HTTP, and a test cluster for the agent.
type walk struct {
	t           *testing.T
	dir         string
	bins        map[string]string
	cluster     cluster.Cluster
	admin       kubernetes.Interface
	hubURL      string
	token       string
	metricsAddr string
}

// newWalk starts the cluster "member", a git repository holding files
// ({{REPO}} replaced by its URL) and the hub (step 1 of TestInstallWalk).
func newWalk(t *testing.T, files map[string]string) *walk {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster, a hub and an agent")
	}
	kubectlBin(t)
	ctx := t.Context()
	w := &walk{t: t, dir: t.TempDir()}
	w.bins = flotillaBinaries(t, filepath.Join(w.dir, "bin"))
	w.cluster = cluster.Start(t, &cluster.ProcessProvider{BinDir: binDir(t), WorkDir: filepath.Join(w.dir, "clusters")}, "member")
	admin, err := kubernetes.NewForConfig(w.cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	w.admin = admin

	gs, err := gitserver.Start(filepath.Join(w.dir, "git"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gs.Close() })
	repo, err := gs.NewRepo("fleet", filepath.Join(w.dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{}
	for name, text := range files {
		content[name] = []byte(strings.ReplaceAll(text, "{{REPO}}", repo.URL))
	}
	if err := repo.Write(content); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("apps"); err != nil {
		t.Fatal(err)
	}

	// The hub, as deploy/hub runs it.
	hubObjs, err := manifests.Kustomize("hub")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, agentAddr := freeAddr(t), freeAddr(t)
	stateDir := filepath.Join(w.dir, "hub-state")
	hubEnv, hubArgs := containerRun(t, hubObjs, "flotilla-hub", nil, map[string]string{
		"FLOTILLA_APPS_REPO":      repo.URL,
		"FLOTILLA_ADVERTISE_ADDR": agentAddr,
		"HOME":                    w.dir,
	})
	hubEnv = append(hubEnv, "FLOTILLA_ALLOW_INSECURE_HTTP_REPOS=true") // the test's git server is plain http
	hubArgs = replaceArgs(t, hubArgs, map[string]string{
		"--state-dir":    stateDir,
		"--http-listen":  httpAddr,
		"--agent-listen": agentAddr,
	})
	hub := startProc(t, w.dir, "hub", w.bins["flotilla-hub"], hubArgs, hubEnv)
	w.hubURL = "http://" + httpAddr
	waitFor(t, hub, time.Minute, "hub /readyz", func() error { return httpGet(ctx, w.hubURL+"/readyz") })
	token, err := os.ReadFile(filepath.Join(stateDir, "admin-token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	w.token = strings.TrimSpace(string(token))
	w.metricsAddr = freeAddr(t)
	return w
}

// cli runs the flotilla CLI against the hub; a failure fails the test.
func (w *walk) cli(args ...string) string {
	w.t.Helper()
	out, err := w.tryCLI(args...)
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *walk) tryCLI(args ...string) (string, error) {
	cmd := exec.CommandContext(w.t.Context(), w.bins["flotilla"], args...)
	cmd.Env = append(os.Environ(), "FLOTILLA_SERVER="+w.hubURL, "FLOTILLA_TOKEN="+w.token,
		"FLOTILLA_CONFIG="+filepath.Join(w.dir, "cli.json"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("flotilla %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// sh runs a shell command from the repository root with the cluster's
// admin kubeconfig, as a user following the docs would.
func (w *walk) sh(script string) {
	w.t.Helper()
	cmd := exec.CommandContext(w.t.Context(), "sh", "-ec", script)
	cmd.Dir = repoRoot
	// kubectl is the one `make bins` built, first on the PATH.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+w.cluster.Kubeconfig(), "PATH="+binDir(w.t)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// startAgent runs flotilla-agent as the flotilla-agent Deployment in the
// cluster runs it: its args and env (the join Secret's values), as its
// ServiceAccount. Only --metrics-listen is moved to a free port, and
// --kubeconfig stands in for the in-cluster config a pod would have.
func (w *walk) startAgent() *harness.Proc {
	t := w.t
	t.Helper()
	ctx := t.Context()
	dep, err := w.admin.AppsV1().Deployments(agentNamespace).Get(ctx, "flotilla-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	depObj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
	if err != nil {
		t.Fatal(err)
	}
	depObj["apiVersion"], depObj["kind"] = "apps/v1", "Deployment"
	kubeconfig := serviceAccountKubeconfig(t, w.admin, w.cluster.RESTConfig(), agentNamespace, dep.Spec.Template.Spec.ServiceAccountName, w.dir)
	env, args := containerRun(t, []*unstructured.Unstructured{{Object: depObj}}, "flotilla-agent",
		func(name, key string) (string, bool) {
			sec, err := w.admin.CoreV1().Secrets(agentNamespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("Secret %s: %v", name, err)
			}
			v, ok := sec.Data[key]
			return string(v), ok
		}, nil)
	args = replaceArgs(t, args, map[string]string{"--metrics-listen": w.metricsAddr})
	args = append(args, "--kubeconfig="+kubeconfig)
	return startProc(t, w.dir, "agent", w.bins["flotilla-agent"], args, env)
}

// flotillaBinaries returns the hub (with flotilla-render), CLI and agent binaries: those of `make
// build` in FLOTILLA_E2E_BIN_DIR when it is set (make test builds them
// first), otherwise built into out with make build's linker flags (without
// make build's CGO_ENABLED=0 -trimpath, which would recompile every
// dependency outside the build cache the other tests share; the code is the
// same).
func flotillaBinaries(t *testing.T, out string) map[string]string {
	t.Helper()
	// flotilla-render goes next to flotilla-hub, which starts it.
	pkgs := []string{"./hub/cmd/flotilla-hub", "./hub/cmd/flotilla-render", "./hub/cmd/flotilla", "./agent/cmd/flotilla-agent"}
	bins := map[string]string{}
	if d := os.Getenv("FLOTILLA_E2E_BIN_DIR"); d != "" {
		for _, p := range pkgs {
			bin := filepath.Join(d, filepath.Base(p))
			if _, err := os.Stat(bin); err != nil {
				t.Fatalf("FLOTILLA_E2E_BIN_DIR is set but %v (run make build)", err)
			}
			bins[filepath.Base(p)] = bin
		}
		return bins
	}
	ldflags := "-s -w -X github.com/flotilla-cd/flotilla/shared/version.Version=" + testVersion
	cmd := exec.CommandContext(t.Context(), "go", append([]string{"build", "-ldflags", ldflags, "-o", out + "/"}, pkgs...)...)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, p := range pkgs {
		bins[filepath.Base(p)] = filepath.Join(out, filepath.Base(p))
	}
	return bins
}

// containerRun returns the environment and arguments the container of
// Deployment name runs with: env values, fieldRef metadata.namespace,
// secretKeyRef through secret (optional keys may be missing), envFrom
// ConfigMaps among objs, then overrides; args with $(VAR) expanded as the
// kubelet does.
func containerRun(t *testing.T, objs []*unstructured.Unstructured, name string, secret func(name, key string) (string, bool), overrides map[string]string) ([]string, []string) {
	t.Helper()
	d := deployments(t, objs)[name]
	if d == nil {
		t.Fatalf("no Deployment %s", name)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, ef := range ctr.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Fatalf("Deployment %s: envFrom %+v: only ConfigMaps are handled", name, ef)
		}
		cm := manifests.Find(objs, "ConfigMap", ef.ConfigMapRef.Name)
		if cm == nil {
			t.Fatalf("Deployment %s: ConfigMap %s not rendered", name, ef.ConfigMapRef.Name)
		}
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		for _, k := range sorted(keys(data)) {
			set(ef.Prefix+k, data[k])
		}
	}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			set(e.Name, expand(e.Value, vars))
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			set(e.Name, d.Namespace)
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			v, ok := secret(r.Name, r.Key)
			if !ok {
				if r.Optional != nil && *r.Optional {
					continue
				}
				t.Fatalf("Deployment %s: env %s: Secret %s has no key %s", name, e.Name, r.Name, r.Key)
			}
			set(e.Name, v)
		default:
			t.Fatalf("Deployment %s: env %s: unhandled source %+v", name, e.Name, e.ValueFrom)
		}
	}
	for _, k := range sorted(keys(overrides)) {
		if _, ok := vars[k]; !ok {
			t.Fatalf("override %s: the manifest does not set it", k)
		}
		set(k, overrides[k])
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	args := append(append([]string{}, ctr.Command...), ctr.Args...)
	for i, a := range args {
		args[i] = expand(a, vars)
	}
	return env, args
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func expand(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[varRef.FindStringSubmatch(ref)[1]]; ok {
			return v
		}
		return ref
	})
}

// replaceArgs sets the value of --flag=value arguments; every flag named
// must be in args.
func replaceArgs(t *testing.T, args []string, vals map[string]string) []string {
	t.Helper()
	out := append([]string{}, args...)
	for flag, v := range vals {
		found := false
		for i, a := range out {
			if strings.HasPrefix(a, flag+"=") {
				out[i], found = flag+"="+v, true
			}
		}
		if !found {
			t.Fatalf("args %v have no %s", args, flag)
		}
	}
	return out
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount with a token from the TokenRequest API, as a pod's
// projected token would.
func serviceAccountKubeconfig(t *testing.T, cs kubernetes.Interface, admin *rest.Config, ns, sa, dir string) string {
	t.Helper()
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", ns, sa, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa", Namespace: ns}
	cfg.CurrentContext = "c"
	path := filepath.Join(dir, "agent.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func startProc(t *testing.T, dir, name, bin string, args, env []string) *harness.Proc {
	t.Helper()
	p, err := harness.StartProc(name, dir, bin, args, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("==== %s log (tail) ====\n%s", name, p.Tail(8000))
		}
	})
	return p
}

// waitFor waits until cond returns nil, failing the test after timeout or
// when p has exited.
func waitFor(t *testing.T, p *harness.Proc, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	err := harness.Eventually(t.Context(), timeout, 100*time.Millisecond, func() error {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited: %v", p.Name, err)
		}
		return cond()
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func httpGet(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestInstallNamespaced installs the agent with deploy/agent/namespaced
// (team-a and team-b only, in its Roles and in its policy ConfigMap) and
// checks both sides: an app in team-a syncs and turns Healthy; an app in
// another namespace is refused by the agent's policy, naming the ConfigMap,
// and nothing is created there.
func TestInstallNamespaced(t *testing.T) {
	app := func(name, ns string) string {
		return `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata:
  name: ` + name + `
spec:
  source:
    repoURL: {{REPO}}
    targetRevision: main
    path: ` + name + `
  destination:
    namespace: ` + ns + `
    clusters: [member]
  syncPolicy:
    automated: {prune: true, selfHeal: true}
`
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  k: v\n"
	w := newWalk(t, map[string]string{
		"apps/team-a.yaml":  app("team-a", "team-a"),
		"apps/outside.yaml": app("outside", "outside"),
		"team-a/cm.yaml":    cm,
		"outside/cm.yaml":   cm,
	})
	ctx := t.Context()
	for _, ns := range []string{"team-a", "team-b", "outside"} {
		if _, err := w.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var join struct {
		Cluster, Token, HubAddr, CAHash string
	}
	if err := json.Unmarshal([]byte(w.cli("cluster", "add", "member", "-o", "json")), &join); err != nil {
		t.Fatal(err)
	}
	w.sh("kubectl apply -k deploy/agent/namespaced && kubectl -n flotilla-system create secret generic flotilla-agent-join" +
		" --from-literal=FLOTILLA_HUB=" + join.HubAddr + " --from-literal=FLOTILLA_CLUSTER=" + join.Cluster +
		" --from-literal=FLOTILLA_JOIN_TOKEN=" + join.Token + " --from-literal=FLOTILLA_CA_HASH=" + join.CAHash)
	if _, err := w.admin.RbacV1().ClusterRoleBindings().Get(ctx, "flotilla-agent", metav1.GetOptions{}); err == nil {
		t.Fatal("the namespaced install created the cluster-admin binding flotilla-agent")
	}
	agent := w.startAgent()

	w.cli("app", "wait", "team-a", "--cluster", "member", "--timeout", "2m")
	if _, err := w.admin.CoreV1().ConfigMaps("team-a").Get(ctx, "settings", metav1.GetOptions{}); err != nil {
		t.Fatalf("team-a app synced but: %v", err)
	}
	waitFor(t, agent, time.Minute, "app outside reported as refused", func() error {
		out, err := w.tryCLI("app", "get", "outside", "-o", "json")
		if err != nil {
			return err
		}
		var a struct {
			Clusters []struct {
				Cluster string `json:"cluster"`
				Sync    string `json:"sync"`
			} `json:"clusters"`
		}
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			return err
		}
		if len(a.Clusters) != 1 || a.Clusters[0].Cluster != "member" {
			return fmt.Errorf("no status for cluster member: %s", out)
		}
		if a.Clusters[0].Sync == "Synced" {
			t.Fatalf("app outside is Synced on a namespace the agent may not write: %s", out)
		}
		// Refused by the policy ConfigMap the install ships, before
		// anything reaches the API server.
		if want := "namespace outside is not in ConfigMap flotilla-system/flotilla-agent-policy namespaces (team-a, team-b)"; !strings.Contains(out, want) {
			return fmt.Errorf("not reported as refused by the policy yet (%q): %s", want, out)
		}
		return nil
	})
	if _, err := w.admin.CoreV1().ConfigMaps("outside").Get(ctx, "settings", metav1.GetOptions{}); err == nil {
		t.Error("ConfigMap outside/settings exists; the namespaced agent must not write outside its namespaces")
	}
}
