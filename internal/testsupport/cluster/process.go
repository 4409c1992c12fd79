package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// serviceCIDR is the Service IP range; serviceIP is its first address,
	// the "kubernetes" Service.
	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1"
	// DefaultStartTimeout bounds ProcessProvider.Create when StartTimeout is 0.
	DefaultStartTimeout = 3 * time.Minute
)

var (
	// ErrMissingBinaries is returned by ProcessProvider.Create when BinDir
	// lacks a control-plane binary; build them with `make bins`.
	ErrMissingBinaries = errors.New("control-plane binaries missing (run `make bins`)")
	// ErrComponentExited means a control-plane process ended on its own.
	ErrComponentExited = errors.New("control-plane component exited")
)

// ProcessProvider runs each cluster as processes on 127.0.0.1: its own etcd
// and kube-apiserver (RBAC authorization, an admin client certificate in
// group system:masters, generated service-account signing keys) and, when
// Full, kube-controller-manager, kube-scheduler and kwok with one fake Node,
// so that Deployments become Available. Clusters are independent; any number
// may be created concurrently.
type ProcessProvider struct {
	// BinDir holds etcd, kube-apiserver and, for Full, kube-controller-manager,
	// kube-scheduler and kwok (see e2e/tools/build.sh). Required.
	BinDir string
	// WorkDir is where cluster directories are created; empty means the
	// system temp directory.
	WorkDir string
	// Full also starts controllers, scheduler and the fake node. Without it
	// the cluster stores objects but runs nothing, and the ServiceAccount
	// admission plugin is off (no controller creates the default accounts).
	Full bool
	// Logger receives lifecycle events; nil means no logging. Component
	// output goes to log files in the cluster directory, never here.
	Logger hclog.Logger
	// StartTimeout bounds Create; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

var _ Provider = (*ProcessProvider)(nil)

// Binaries lists the binaries the provider needs.
func (p *ProcessProvider) Binaries() []string {
	bins := []string{"etcd", "kube-apiserver"}
	if p.Full {
		bins = append(bins, "kube-controller-manager", "kube-scheduler", "kwok")
	}
	return bins
}

// MissingBinaries returns the paths of needed binaries absent from BinDir.
func (p *ProcessProvider) MissingBinaries() []string {
	var missing []string
	for _, b := range p.Binaries() {
		path := filepath.Join(p.BinDir, b)
		if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, path)
		}
	}
	return missing
}

// Create starts a cluster named name and returns a *ProcessCluster once the
// API server is ready and, when Full, the fake Node is Ready and the default
// ServiceAccount exists. On error everything started is stopped and removed;
// the error carries the tail of the component logs.
func (p *ProcessProvider) Create(ctx context.Context, name string) (Cluster, error) {
	if missing := p.MissingBinaries(); len(missing) > 0 {
		return nil, fmt.Errorf("create cluster %s: %w: %s", name, ErrMissingBinaries, strings.Join(missing, ", "))
	}
	timeout := p.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	logger := p.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("cluster").With("cluster", name)

	if p.WorkDir != "" {
		if err := os.MkdirAll(p.WorkDir, 0o755); err != nil {
			return nil, fmt.Errorf("create cluster %s: work dir: %w", name, err)
		}
	}
	// A free port can be taken by another process before a component binds
	// it; then the whole cluster is started again on new ports.
	for attempt := 1; ; attempt++ {
		c, err := p.createOnce(ctx, name, logger)
		if errors.Is(err, errPortTaken) && attempt < maxPortAttempts {
			first, _, _ := strings.Cut(err.Error(), "\n")
			logger.Warn("port taken, starting cluster again", "attempt", attempt, "error", first)
			continue
		}
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return c, nil
	}
}

// maxPortAttempts bounds the restarts of Create when a port was taken.
const maxPortAttempts = 3

// errPortTaken means a component could not bind its port.
var errPortTaken = errors.New("port taken by another process")

func (p *ProcessProvider) createOnce(ctx context.Context, name string, logger hclog.Logger) (*ProcessCluster, error) {
	dir, err := os.MkdirTemp(p.WorkDir, "flotilla-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", name, err)
	}
	c := &ProcessCluster{name: name, dir: dir, logger: logger, dead: make(chan struct{}), stopped: make(chan struct{})}
	if err := c.start(ctx, p); err != nil {
		if errors.Is(err, ErrComponentExited) && c.exitedOnBind() {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		var b strings.Builder
		dumpLogs(&b, name, c.comps, 20)
		// Cleanup must run even though ctx may be done.
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("create cluster %s: %w\n%s", name, err, b.String())
	}
	logger.Info("cluster ready", "dir", dir, "server", c.rest.Host,
		"etcd_ready", c.timings.EtcdReady, "apiserver_ready", c.timings.APIServerReady, "ready", c.timings.Ready)
	return c, nil
}

// exitedOnBind reports whether a component exited because its address was
// in use.
func (c *ProcessCluster) exitedOnBind() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, comp := range c.comps {
		if comp.exited() && strings.Contains(comp.tail(50), "address already in use") {
			return true
		}
	}
	return false
}

// start runs the components one after another, each once its dependency is
// ready.
func (c *ProcessCluster) start(ctx context.Context, p *ProcessProvider) error {
	begin := time.Now()
	pki, err := writePKI(c.dir)
	if err != nil {
		return err
	}
	ports, err := pickPorts(4)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	c.kubeletPort = ports[3]

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err := c.run(p.BinDir, "etcd", []string{
		"--name=" + c.name,
		"--data-dir=" + filepath.Join(c.dir, "etcd"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=" + c.name + "=" + peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	}); err != nil {
		return err
	}
	if err := waitFor(ctx, "etcd health", c.dead, etcdHealthy(etcdURL)); err != nil {
		return err
	}
	c.timings.EtcdReady = time.Since(begin)

	apiArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(c.dir, "apiserver-certs"),
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPub,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		// kwok serves the fake node's kubelet API (pod logs) on
		// 127.0.0.1, the node's InternalIP; its Hostname resolves nowhere.
		"--kubelet-preferred-address-types=InternalIP",
	}
	if !p.Full {
		apiArgs = append(apiArgs, "--disable-admission-plugins=ServiceAccount")
	}
	if err := c.run(p.BinDir, "kube-apiserver", apiArgs); err != nil {
		return err
	}

	c.rest = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(apiPort),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
	}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := writeKubeconfig(c.kubeconfig, c.name, c.rest); err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(c.rest)
	if err != nil {
		return fmt.Errorf("client for %s: %w", c.rest.Host, err)
	}
	defer httpClient.CloseIdleConnections()
	if err := waitFor(ctx, "kube-apiserver /readyz", c.dead, httpOK(httpClient, c.rest.Host+"/readyz")); err != nil {
		return err
	}
	c.timings.APIServerReady = time.Since(begin)
	c.logger.Debug("apiserver ready", "after", c.timings.APIServerReady)

	if p.Full {
		if err := c.startWorkloads(ctx, p.BinDir, pki); err != nil {
			return err
		}
	}
	c.timings.Ready = time.Since(begin)
	return nil
}

// startWorkloads starts controller-manager, scheduler and kwok, creates the
// fake Node and waits until it is Ready and the default ServiceAccount exists.
func (c *ProcessCluster) startWorkloads(ctx context.Context, binDir string, pki *pki) error {
	kwokConfig := filepath.Join(c.dir, "kwok.yaml")
	c.podLog = filepath.Join(c.dir, "pod.log")
	if err := writeKwokConfig(kwokConfig, c.podLog); err != nil {
		return err
	}
	// Both serve no HTTPS (--secure-port=0): nothing here probes them, and
	// fixed default ports would collide between clusters.
	if err := c.run(binDir, "kube-controller-manager", []string{
		"--kubeconfig=" + c.kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--service-account-private-key-file=" + pki.saKey,
		"--root-ca-file=" + pki.caCert,
		"--cluster-signing-cert-file=" + pki.caCert,
		"--cluster-signing-key-file=" + pki.caKey,
		"--service-cluster-ip-range=" + serviceCIDR,
	}); err != nil {
		return err
	}
	if err := c.run(binDir, "kube-scheduler", []string{
		"--kubeconfig=" + c.kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
	}); err != nil {
		return err
	}
	if err := c.run(binDir, "kwok", kwokArgs(c.kubeconfig, kwokConfig, c.kubeletPort, pki)); err != nil {
		return err
	}

	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return fmt.Errorf("clientset for %s: %w", c.rest.Host, err)
	}
	if err := createFakeNode(ctx, cs); err != nil {
		return err
	}
	if err := waitFor(ctx, "Node "+NodeName+" Ready", c.dead, func(ctx context.Context) (bool, error) {
		return nodeReady(ctx, cs)
	}); err != nil {
		return err
	}
	return waitFor(ctx, "ServiceAccount default/default", c.dead, func(ctx context.Context) (bool, error) {
		return defaultServiceAccount(ctx, cs)
	})
}

// run starts one component and records it; an unexpected exit closes c.dead.
func (c *ProcessCluster) run(binDir, name string, args []string) error {
	comp, err := startComponent(c.dir, filepath.Join(binDir, name), name, args, c.componentExited)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.comps = append(c.comps, comp)
	c.mu.Unlock()
	c.logger.Debug("component started", "component", name, "pid", comp.pid())
	return nil
}

// etcdHealthy checks etcd's /health endpoint.
func etcdHealthy(url string) func(ctx context.Context) (bool, error) {
	return httpOK(http.DefaultClient, url+"/health")
}

// httpOK checks that GET url answers 200.
func httpOK(client *http.Client, url string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return true, nil
	}
}
