//go:build !unit

package containers

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/docker"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

const (
	// EnvHubImage and EnvAgentImage name the images under test; make
	// e2e-containers builds them and sets both.
	EnvHubImage   = "FLOTILLA_E2E_HUB_IMAGE"
	EnvAgentImage = "FLOTILLA_E2E_AGENT_IMAGE"

	agentNamespace = "flotilla-system"
	// hubAlias is the hub's name on its network, in its certificate and in
	// the join data agents get.
	hubAlias = "flotilla-hub"
	// saDir is where a Pod finds its ServiceAccount token and CA.
	saDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	// wait bounds each condition.
	wait = 2 * time.Minute
)

// world is what the scenarios share: two clusters whose control planes are
// containers on networks of their own, a hub container on a third network,
// one agent container per cluster and a git server on the hub network's
// gateway.
type world struct {
	t          *testing.T
	d          docker.CLI
	root       string
	binDir     string
	hubImage   string
	agentImage string
	prefix     string

	hubNet   string
	hubCtr   string
	hubState string
	hub      *harness.Hub

	clusters map[string]*cluster.ContainerCluster
	admin    map[string]kubernetes.Interface
	agents   map[string]string // cluster → agent container
	installs map[string]string // cluster → kustomization dir under deploy/

	repo    *gitserver.Repo
	appsDir string
	probe   string
}

func newWorld(t *testing.T) *world {
	hubImage, agentImage := os.Getenv(EnvHubImage), os.Getenv(EnvAgentImage)
	if hubImage == "" || agentImage == "" {
		t.Skipf("%s and %s are not set: run make e2e-containers, which builds the images", EnvHubImage, EnvAgentImage)
	}
	binDir := os.Getenv("FLOTILLA_E2E_BIN_DIR")
	if binDir == "" {
		t.Fatal("FLOTILLA_E2E_BIN_DIR is not set (make e2e-containers sets it)")
	}
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		t: t, root: t.TempDir(), binDir: binDir, hubImage: hubImage, agentImage: agentImage,
		prefix:   fmt.Sprintf("flotilla-e2e-%d", os.Getpid()),
		clusters: map[string]*cluster.ContainerCluster{}, admin: map[string]kubernetes.Interface{},
		agents: map[string]string{}, installs: map[string]string{"alpha": "deploy/agent", "beta": "deploy/agent/namespaced"},
	}
	ctx := t.Context()
	if err := w.d.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{hubImage, agentImage} {
		if !w.d.HasImage(ctx, img) {
			t.Fatalf("image %s is not built (make e2e-containers builds it)", img)
		}
	}

	// The clusters, concurrently; each on its own network.
	prov := &cluster.ContainerProvider{BinDir: binDir, WorkDir: w.root}
	for _, c := range cluster.StartAll(t, prov, "alpha", "beta") {
		cc := c.(*cluster.ContainerCluster)
		w.clusters[c.Name()] = cc
		cs, err := kubernetes.NewForConfig(c.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		w.admin[c.Name()] = cs
	}

	// The hub's network, the git server on its gateway, the hub.
	w.hubNet = w.prefix + "-hub"
	w.docker("network", "create", "--label", "flotilla-e2e", w.hubNet)
	t.Cleanup(func() { _, _ = w.d.Run(context.Background(), "network", "rm", w.hubNet) })
	gw, err := w.d.Gateway(ctx, w.hubNet)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gitserver.StartOn(filepath.Join(w.root, "git"), gw+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := os.MkdirAll(filepath.Join(w.root, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.repo, err = srv.NewRepo("fleet", filepath.Join(w.root, "work"))
	if err != nil {
		t.Fatal(err)
	}
	w.appsDir = filepath.Join(w.root, "apps")
	if err := os.MkdirAll(w.appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.hubState = w.stateDir("hub-state")
	w.startHub(w.hubState)
	tok, err := os.ReadFile(filepath.Join(w.hubState, "admin-token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	if err := os.WriteFile(filepath.Join(w.root, "admin-token"), tok, 0o600); err != nil {
		t.Fatal(err)
	}
	w.attachHub(strings.TrimSpace(string(tok)))

	// The probe for the direction-of-trust check.
	w.probe = filepath.Join(w.root, "netprobe")
	build := exec.CommandContext(ctx, "go", "build", "-o", w.probe, "./netprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build netprobe: %v\n%s", err, out)
	}

	// Each cluster: registered at the hub, the agent installed with the
	// manifests of deploy/, its container started as the Deployment says.
	for _, name := range []string{"alpha", "beta"} {
		w.install(name)
	}
	t.Cleanup(func() {
		if t.Failed() {
			w.dump()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ctrs := []string{w.hubCtr}
		for _, a := range w.agents {
			ctrs = append(ctrs, a)
		}
		_ = w.d.Remove(ctx, ctrs...)
	})
	for _, name := range []string{"alpha", "beta"} {
		w.waitConnected(name, true)
	}
	return w
}

// docker runs docker and fails the test on error.
func (w *world) docker(args ...string) string {
	w.t.Helper()
	out, err := w.d.Run(w.t.Context(), args...)
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// stateDir makes a folder the nonroot user of the images owns.
func (w *world) stateDir(name string) string {
	dir := filepath.Join(w.root, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chown(dir, 65532, 65532); err != nil {
		w.t.Fatalf("chown %s to 65532 (the tier runs as root, as make e2e-containers does): %v", dir, err)
	}
	return dir
}

// startHub runs a hub container on state (a host folder) and waits until it
// answers /readyz on its published port.
func (w *world) startHub(state string, extra ...string) {
	w.t.Helper()
	w.hubCtr = fmt.Sprintf("%s-hub-%d", w.prefix, time.Now().UnixNano())
	args := []string{"run", "-d", "--name", w.hubCtr, "--label", "flotilla-e2e",
		"--network", w.hubNet, "--network-alias", hubAlias,
		"--read-only", "--user", "65532:65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-v", state + ":/var/lib/flotilla", "-v", w.appsDir + ":/apps:ro",
		"-p", "127.0.0.1::8080", w.hubImage,
		"--agent-listen", ":8443", "--http-listen", ":8080",
		"--advertise-addr", hubAlias + ":8443", "--tls-san", hubAlias,
		"--apps-dir", "/apps", "--poll-interval", "2s", "--resync", "2s",
		"--allow-insecure-http-repos", "--log-level", "debug"}
	w.docker(append(args, extra...)...)
	addr, err := w.d.HostPort(w.t.Context(), w.hubCtr, "8080/tcp")
	if err != nil {
		w.t.Fatal(err)
	}
	url := "http://" + addr
	err = harness.Eventually(w.t.Context(), wait, 200*time.Millisecond, func() error {
		if st := w.docker("inspect", "--format", "{{.State.Status}}", w.hubCtr); st != "running" {
			return fmt.Errorf("hub container %s: %s\n%s", w.hubCtr, st, w.d.Logs(w.t.Context(), w.hubCtr, 40))
		}
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("hub /readyz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if w.hub != nil {
		w.attachHub(w.hub.Token)
	}
}

func (w *world) attachHub(token string) {
	addr, err := w.d.HostPort(w.t.Context(), w.hubCtr, "8080/tcp")
	if err != nil {
		w.t.Fatal(err)
	}
	w.hub, err = harness.RemoteHub(w.binDir, filepath.Join(w.root, "cli"), "http://"+addr, token)
	if err != nil {
		w.t.Fatal(err)
	}
}

// kubectl runs the kubectl of binDir against cluster name from the
// repository root (so that -k deploy/... names the shipped manifests).
func (w *world) kubectl(name string, args ...string) string {
	w.t.Helper()
	cmd := exec.CommandContext(w.t.Context(), filepath.Join(w.binDir, "kubectl"), append([]string{"--kubeconfig", w.clusters[name].Kubeconfig()}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// install registers cluster name at the hub, applies its agent manifests
// with kubectl and starts the agent container.
func (w *world) install(name string) {
	w.t.Helper()
	ctx := w.t.Context()
	join, err := w.hub.AddCluster(ctx, name)
	if err != nil {
		w.t.Fatal(err)
	}
	if name == "beta" {
		// The namespaced install binds Roles in these; they must exist.
		w.kubectl(name, "create", "namespace", "team-a")
		w.kubectl(name, "create", "namespace", "team-b")
	}
	w.kubectl(name, "apply", "-k", w.installs[name])
	w.kubectl(name, "-n", agentNamespace, "create", "secret", "generic", "flotilla-agent-join",
		"--from-literal=FLOTILLA_HUB="+join.HubAddr, "--from-literal=FLOTILLA_CLUSTER="+join.Cluster,
		"--from-literal=FLOTILLA_JOIN_TOKEN="+join.Token, "--from-literal=FLOTILLA_CA_HASH="+join.CAHash)
	w.startAgent(name)
}

// startAgent does what a kubelet does for the agent's Deployment as the
// cluster holds it: a ServiceAccount token and the cluster CA where a Pod
// finds them, KUBERNETES_SERVICE_HOST/PORT, the container's args and env
// (fieldRefs and secretKeyRefs resolved), its securityContext as docker
// flags; the container runs on the cluster's network with the hub's
// network attached.
func (w *world) startAgent(name string) {
	w.t.Helper()
	ctx := w.t.Context()
	cs := w.admin[name]
	dep, err := cs.AppsV1().Deployments(agentNamespace).Get(ctx, "flotilla-agent", metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	ctr := pod.Containers[0]

	expiry := int64(24 * 3600)
	tr, err := cs.CoreV1().ServiceAccounts(agentNamespace).CreateToken(ctx, pod.ServiceAccountName,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	sa := filepath.Join(w.root, "sa-"+name)
	if err := os.MkdirAll(sa, 0o755); err != nil {
		w.t.Fatal(err)
	}
	for f, data := range map[string][]byte{
		"token": []byte(tr.Status.Token), "ca.crt": w.clusters[name].CACert(), "namespace": []byte(agentNamespace),
	} {
		if err := os.WriteFile(filepath.Join(sa, f), data, 0o644); err != nil {
			w.t.Fatal(err)
		}
	}

	env := w.containerEnv(name, dep, ctr)
	agent := fmt.Sprintf("%s-agent-%s", w.prefix, name)
	args := []string{"create", "--name", agent, "--label", "flotilla-e2e", "--network", w.clusters[name].Network(),
		"-v", sa + ":" + saDir + ":ro",
		"-e", "KUBERNETES_SERVICE_HOST=" + cluster.APIServerAlias, "-e", "KUBERNETES_SERVICE_PORT=" + cluster.APIServerPort}
	args = append(args, securityFlags(pod, ctr)...)
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(args, w.agentImage)
	args = append(args, expandArgs(ctr.Args, env)...)
	w.docker(args...)
	w.docker("network", "connect", w.hubNet, agent)
	w.docker("start", agent)
	w.agents[name] = agent
}

// containerEnv resolves the container's env as the kubelet does.
func (w *world) containerEnv(name string, dep *appsv1.Deployment, ctr corev1.Container) []string {
	w.t.Helper()
	var env []string
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env = append(env, e.Name+"="+dep.Namespace)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			sec, err := w.admin[name].CoreV1().Secrets(dep.Namespace).Get(w.t.Context(), ref.Name, metav1.GetOptions{})
			if err != nil {
				w.t.Fatal(err)
			}
			v, ok := sec.Data[ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				w.t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+string(v))
		default:
			w.t.Fatalf("env %s: source %+v is not handled", e.Name, e.ValueFrom)
		}
	}
	return env
}

// expandArgs replaces $(VAR) with env's values, as the kubelet does.
func expandArgs(args, env []string) []string {
	out := slices.Clone(args)
	for i := range out {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			out[i] = strings.ReplaceAll(out[i], "$("+k+")", v)
		}
	}
	return out
}

// securityFlags are the docker flags of the pod's and container's
// securityContext.
func securityFlags(pod corev1.PodSpec, ctr corev1.Container) []string {
	var flags []string
	if psc := pod.SecurityContext; psc != nil && psc.RunAsUser != nil {
		user := fmt.Sprint(*psc.RunAsUser)
		if psc.RunAsGroup != nil {
			user += fmt.Sprintf(":%d", *psc.RunAsGroup)
		}
		flags = append(flags, "--user", user)
	}
	if sc := ctr.SecurityContext; sc != nil {
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			flags = append(flags, "--read-only")
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			flags = append(flags, "--security-opt", "no-new-privileges")
		}
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Drop {
				flags = append(flags, "--cap-drop", string(c))
			}
		}
	}
	return flags
}

// waitConnected waits until the hub shows cluster name connected (or not).
func (w *world) waitConnected(name string, connected bool) {
	w.t.Helper()
	w.eventually(fmt.Sprintf("cluster %s connected=%t", name, connected), func() error {
		out, err := w.hub.CLI(w.t.Context(), "cluster", "get", name, "-o", "json")
		if err != nil {
			return err
		}
		if want := fmt.Sprintf(`"connected": %t`, connected); !strings.Contains(out, want) && !strings.Contains(out, strings.ReplaceAll(want, " ", "")) {
			return fmt.Errorf("cluster %s: %s", name, out)
		}
		return nil
	})
}

func (w *world) eventually(what string, cond func() error) {
	w.t.Helper()
	if err := harness.Eventually(w.t.Context(), wait, 200*time.Millisecond, cond); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

// writeApp writes an Application definition into the hub's apps folder.
func (w *world) writeApp(name, path, ns string, clusters ...string) {
	w.t.Helper()
	def := fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
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
    automated: {prune: true, selfHeal: true}
`, name, w.repo.URL, path, ns, strings.Join(clusters, ", "))
	if err := os.WriteFile(filepath.Join(w.appsDir, name+".yaml"), []byte(def), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// commit writes files into the repository and pushes; it returns the commit.
func (w *world) commit(msg string, files map[string]string) string {
	w.t.Helper()
	b := map[string][]byte{}
	for k, v := range files {
		b[k] = []byte(v)
	}
	if err := w.repo.Write(b); err != nil {
		w.t.Fatal(err)
	}
	rev, err := w.repo.CommitAndPush(msg)
	if err != nil {
		w.t.Fatal(err)
	}
	return rev
}

// app returns `flotilla app get NAME -o json`'s view of app on cluster.
func (w *world) app(name, cl string) (api.AppClusterView, error) {
	a, err := w.hub.App(w.t.Context(), name)
	if err != nil {
		return api.AppClusterView{}, err
	}
	for _, c := range a.Clusters {
		if c.Cluster == cl {
			return c, nil
		}
	}
	return api.AppClusterView{}, fmt.Errorf("app %s has no status for cluster %s", name, cl)
}

// probeFrom runs netprobe in container's network namespace and returns its
// verdict for each address.
func (w *world) probeFrom(container string, addrs ...string) map[string]string {
	w.t.Helper()
	args := []string{"run", "--rm", "--network", "container:" + container, "--read-only", "--user", "65532:65532",
		"--cap-drop", "ALL", "-v", w.probe + ":/netprobe:ro", "--entrypoint", "/netprobe", w.agentImage}
	out := w.docker(append(args, addrs...)...)
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		addr, verdict, _ := strings.Cut(line, " ")
		got[addr] = verdict
	}
	return got
}

// dump logs the hub's and agents' output and the app list.
func (w *world) dump() {
	ctx := context.Background()
	w.t.Logf("==== hub %s ====\n%s", w.hubCtr, w.d.Logs(ctx, w.hubCtr, 60))
	for name, a := range w.agents {
		w.t.Logf("==== agent %s (%s) ====\n%s", name, a, w.d.Logs(ctx, a, 60))
	}
	if out, err := w.hub.CLI(ctx, "app", "list"); err == nil {
		w.t.Logf("==== flotilla app list ====\n%s", out)
	}
}

// configMapData returns the data of ConfigMap ns/name on cluster cl.
func (w *world) configMapData(cl, ns, name string) (map[string]string, error) {
	cm, err := w.admin[cl].CoreV1().ConfigMaps(ns).Get(w.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}
