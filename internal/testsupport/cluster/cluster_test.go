//go:build !unit

package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// testBinDir is FLOTILLA_E2E_BIN_DIR or ControlPlaneBinDir (the
// repository's bin/; before, a path two folders up, which is internal/bin).
func testBinDir(t *testing.T) string {
	if d := os.Getenv("FLOTILLA_E2E_BIN_DIR"); d != "" {
		return d
	}
	return ControlPlaneBinDir()
}

// skipUnlessProcess skips tests of ProcessProvider internals when another
// provider is selected.
func skipUnlessProcess(t *testing.T) {
	t.Helper()
	if v := os.Getenv(EnvProvider); v != "" && v != "process" {
		t.Skipf("tests the process provider; %s=%s", EnvProvider, v)
	}
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Debug})
}

func TestProviderFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		want    Provider
		wantErr error
	}{
		{name: "default", env: "", want: &ProcessProvider{BinDir: "/b", WorkDir: "/w", Full: true}},
		{name: "process", env: "process", want: &ProcessProvider{BinDir: "/b", WorkDir: "/w", Full: true}},
		{name: "kind", env: "kind", want: &KindProvider{WorkDir: "/w"}},
		{name: "unknown", env: "docker", wantErr: ErrUnknownProvider},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvProvider, tt.env)
			got, err := ProviderFromEnv("/b", "/w")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ProviderFromEnv() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ProviderFromEnv() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateMissingBinaries(t *testing.T) {
	p := &ProcessProvider{BinDir: t.TempDir(), WorkDir: t.TempDir(), Full: true}
	_, err := p.Create(t.Context(), "nobins")
	if !errors.Is(err, ErrMissingBinaries) {
		t.Fatalf("Create() error = %v, want ErrMissingBinaries", err)
	}
	if !strings.Contains(err.Error(), "make bins") {
		t.Errorf("Create() error %q does not name `make bins`", err)
	}
	entries, _ := os.ReadDir(p.WorkDir)
	if len(entries) != 0 {
		t.Errorf("Create() left %d entries in WorkDir", len(entries))
	}
}

// TestMinimalCluster runs etcd and kube-apiserver only: objects are stored,
// Pods are admitted without a default ServiceAccount.
func TestMinimalCluster(t *testing.T) {
	skipUnlessProcess(t)
	p := &ProcessProvider{BinDir: testBinDir(t), WorkDir: t.TempDir(), Logger: testLogger(t)}
	c := Start(t, p, "minimal").(*ProcessCluster)
	reportCluster(t, c)
	if got := len(c.PIDs()); got != 2 {
		t.Errorf("minimal cluster runs %d processes, want 2 (etcd, kube-apiserver)", got)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", c.Kubeconfig(), err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Pod through the kubeconfig file: %v", err)
	}
	stopAndCheck(t, c)
}

// TestFullClusters starts two clusters of the provider chosen by
// FLOTILLA_E2E_PROVIDER (process clusters are Full) concurrently and checks
// in each that a Deployment becomes Available and that RBAC and
// service-account tokens work; then that Stop leaves nothing behind.
func TestFullClusters(t *testing.T) {
	p, err := ProviderFromEnv(testBinDir(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if pp, ok := p.(*ProcessProvider); ok {
		pp.Logger = testLogger(t)
	}
	begin := time.Now()
	clusters := StartAll(t, p, "one", "two")
	t.Logf("two clusters ready after %v (concurrently)", time.Since(begin).Round(time.Millisecond))

	for _, c := range clusters {
		t.Run(c.Name(), func(t *testing.T) {
			pc, isProcess := c.(*ProcessCluster)
			if isProcess {
				reportCluster(t, pc)
			}
			cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
			took := deployAndWait(t, cs, 2)
			t.Logf("cluster %s: Deployment 2/2 Available after %v", c.Name(), took.Round(time.Millisecond))
			checkRBAC(t, c, cs)
			if isProcess {
				rss, err := pc.RSSBytes()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("cluster %s: RSS of %d processes after the Deployment: %d MiB", c.Name(), len(pc.PIDs()), rss>>20)
			}
		})
	}
	for _, c := range clusters {
		if pc, ok := c.(*ProcessCluster); ok {
			stopAndCheck(t, pc)
		} else if err := c.Stop(t.Context()); err != nil {
			t.Errorf("Stop() = %v", err)
		}
	}
}

func reportCluster(t *testing.T, c *ProcessCluster) {
	t.Helper()
	rss, err := c.RSSBytes()
	if err != nil {
		t.Fatal(err)
	}
	tm := c.Timings()
	t.Logf("cluster %s: etcd ready after %v, apiserver ready after %v (%v after etcd), cluster ready after %v, RSS of %d processes %d MiB",
		c.Name(), tm.EtcdReady.Round(time.Millisecond), tm.APIServerReady.Round(time.Millisecond),
		(tm.APIServerReady - tm.EtcdReady).Round(time.Millisecond), tm.Ready.Round(time.Millisecond), len(c.PIDs()), rss>>20)
}

// deployAndWait creates a Deployment with replicas and returns how long it
// took until all replicas were available.
func deployAndWait(t *testing.T, cs kubernetes.Interface, replicas int32) time.Duration {
	t.Helper()
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
	begin := time.Now()
	if _, err := cs.AppsV1().Deployments("default").Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Deployment default/web: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := waitFor(ctx, "Deployment default/web available", nil, func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Status.AvailableReplicas == replicas && got.Status.ObservedGeneration == got.Generation, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(begin)
}

// checkRBAC requests a token for a new ServiceAccount (signed with the
// generated key) and checks that the API server authenticates it and
// authorizes it by RBAC: forbidden first, allowed after a RoleBinding.
func checkRBAC(t *testing.T, c Cluster, cs kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"}}
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount default/probe: %v", err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "probe", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("request token for ServiceAccount default/probe: %v", err)
	}
	cfg := c.RESTConfig()
	cfg.CertData, cfg.KeyData = nil, nil
	cfg.BearerToken = tr.Status.Token
	saClient := kubernetes.NewForConfigOrDie(cfg)

	_, err = saClient.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list Pods as ServiceAccount without RoleBinding: error = %v, want Forbidden", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "probe-view", Namespace: "default"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "probe", Namespace: "default"}},
	}
	if _, err := cs.RbacV1().RoleBindings("default").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create RoleBinding default/probe-view: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = waitFor(wctx, "ServiceAccount default/probe allowed to list Pods", nil, func(ctx context.Context) (bool, error) {
		pods, err := saClient.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 2, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stopAndCheck stops c and asserts that none of its processes is left
// (neither a component nor anything in its process groups, nor any process
// whose command line names the cluster directory) and that the directory
// is gone.
func stopAndCheck(t *testing.T, c *ProcessCluster) {
	t.Helper()
	pids := c.PIDs()
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("cluster %s: pid %d still exists after Stop (kill 0: %v)", c.Name(), pid, err)
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil {
			for _, p := range pids {
				if pgid == p {
					t.Errorf("cluster %s: pid %d is still in process group %d", c.Name(), pid, p)
				}
			}
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), c.Dir()) {
			t.Errorf("cluster %s: pid %d still runs %q", c.Name(), pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	if _, err := os.Stat(c.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster %s: directory %s still exists after Stop (stat: %v)", c.Name(), c.Dir(), err)
	}
	// A second Stop is a no-op with the same result.
	if err := c.Stop(t.Context()); err != nil {
		t.Errorf("second Stop() = %v", err)
	}
}

// TestCreateRetriesTakenPort hands etcd a port that is in use and checks
// that Create starts the cluster again on other ports.
func TestCreateRetriesTakenPort(t *testing.T) {
	skipUnlessProcess(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[0] = busy.Addr().(*net.TCPAddr).Port
		}
		return ports, err
	}
	t.Cleanup(func() { pickPorts = freePorts })

	p := &ProcessProvider{BinDir: testBinDir(t), WorkDir: t.TempDir(), Logger: testLogger(t)}
	c := Start(t, p, "retry").(*ProcessCluster)
	if calls != 2 {
		t.Errorf("ports picked %d times, want 2 (one retry)", calls)
	}
	entries, err := os.ReadDir(p.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || filepath.Join(p.WorkDir, entries[0].Name()) != c.Dir() {
		t.Errorf("WorkDir holds %d entries after a retry, want only %s", len(entries), c.Dir())
	}
}
