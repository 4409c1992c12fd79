package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/internal/testsupport/docker"
)

const (
	// APIServerAlias is the name the API server has on its cluster's
	// network: the in-cluster name of the kubernetes Service, which its
	// serving certificate carries.
	APIServerAlias = "kubernetes.default.svc"
	// APIServerPort is the API server's port on its cluster's network.
	APIServerPort = "6443"
	// containerLabel marks everything a ContainerProvider makes.
	containerLabel = "flotilla-e2e"
)

// ContainerProvider runs each cluster's control plane (etcd and
// kube-apiserver, the binaries of BinDir) in containers on a Docker network
// of its own, so that only containers on that network reach the API server
// (as kubernetes.default.svc:6443). The test process reaches it on a port
// published on 127.0.0.1 only. The clusters store objects but run no
// workloads (no controllers, scheduler or node).
type ContainerProvider struct {
	// BinDir holds etcd and kube-apiserver. Required.
	BinDir string
	// WorkDir is where cluster directories are created; empty means the
	// system temp directory.
	WorkDir string
	// Docker runs the docker CLI.
	Docker docker.CLI
	// StartTimeout bounds Create; 0 means DefaultStartTimeout.
	StartTimeout time.Duration

	imageOnce sync.Once
	image     string
	imageErr  error
}

var _ Provider = (*ContainerProvider)(nil)

// ContainerCluster is a cluster created by ContainerProvider.
type ContainerCluster struct {
	name       string
	dir        string
	network    string
	etcd       string // container names
	apiserver  string
	kubeconfig string
	caPEM      []byte
	rest       *rest.Config
	docker     docker.CLI

	stopOnce sync.Once
	stopErr  error
}

var _ Cluster = (*ContainerCluster)(nil)

// Name implements Cluster.
func (c *ContainerCluster) Name() string { return c.name }

// Kubeconfig implements Cluster (the published loopback port).
func (c *ContainerCluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig implements Cluster.
func (c *ContainerCluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Network is the cluster's Docker network.
func (c *ContainerCluster) Network() string { return c.network }

// APIServerContainer is the name of the kube-apiserver container.
func (c *ContainerCluster) APIServerContainer() string { return c.apiserver }

// CACert is the PEM of the cluster CA, which signed the API server's
// certificate (what a Pod finds in ca.crt).
func (c *ContainerCluster) CACert() []byte { return bytes.Clone(c.caPEM) }

// Dump implements Cluster: the last lines of each container's output.
func (c *ContainerCluster) Dump(w io.Writer) {
	for _, ctr := range []string{c.etcd, c.apiserver} {
		fmt.Fprintf(w, "==== cluster %s: container %s, last %d lines ====\n%s\n", c.name, ctr, dumpLines,
			strings.TrimRight(c.docker.Logs(context.Background(), ctr, dumpLines), "\n"))
	}
}

// Stop implements Cluster: it removes the containers, the network and the
// cluster directory.
func (c *ContainerCluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		var errs []error
		if err := c.docker.Remove(ctx, c.apiserver, c.etcd); err != nil {
			errs = append(errs, err)
		}
		if _, err := c.docker.Run(ctx, "network", "rm", c.network); err != nil && !strings.Contains(err.Error(), "not found") {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			c.stopErr = fmt.Errorf("stop cluster %s: %w", c.name, err)
		}
	})
	return c.stopErr
}

// Create implements Provider.
func (p *ContainerProvider) Create(ctx context.Context, name string) (Cluster, error) {
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(p.BinDir, b)); err != nil {
			return nil, fmt.Errorf("create cluster %s: %w: %s", name, ErrMissingBinaries, filepath.Join(p.BinDir, b))
		}
	}
	timeout := p.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.Docker.Ping(ctx); err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", name, err)
	}
	image, err := p.runtimeImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", name, err)
	}
	if p.WorkDir != "" {
		if err := os.MkdirAll(p.WorkDir, 0o755); err != nil {
			return nil, fmt.Errorf("create cluster %s: work dir: %w", name, err)
		}
	}
	dir, err := os.MkdirTemp(p.WorkDir, "flotilla-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("create cluster %s: %w", name, err)
	}
	prefix := "flotilla-e2e-" + name + "-" + strings.ToLower(rand.Text()[:6])
	c := &ContainerCluster{
		name: name, dir: dir, network: prefix, docker: p.Docker,
		etcd: prefix + "-etcd", apiserver: prefix + "-apiserver",
	}
	if err := c.start(ctx, p.BinDir, image); err != nil {
		var b strings.Builder
		c.Dump(&b)
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("create cluster %s: %w\n%s", name, err, b.String())
	}
	return c, nil
}

func (c *ContainerCluster) start(ctx context.Context, binDir, image string) error {
	pki, err := writePKI(c.dir)
	if err != nil {
		return err
	}
	// The components run as root in their containers; the key files stay 0600.
	c.caPEM = pki.caPEM
	d := c.docker
	if _, err := d.Run(ctx, "network", "create", "--label", containerLabel, c.network); err != nil {
		return err
	}
	common := []string{"run", "-d", "--label", containerLabel, "--network", c.network, "--read-only", "--tmpfs", "/tmp"}
	// Binaries in bin/ may be symlinks to another folder: mount each
	// binary's real file, read-only.
	for _, b := range []string{"etcd", "kube-apiserver"} {
		real, err := filepath.EvalSymlinks(filepath.Join(binDir, b))
		if err != nil {
			return err
		}
		real, err = filepath.Abs(real)
		if err != nil {
			return err
		}
		common = append(common, "-v", real+":/opt/cp/"+b+":ro")
	}
	etcdURL := "http://" + c.etcd + ":2379"
	if _, err := d.Run(ctx, append(common, "--name", c.etcd, "--tmpfs", "/var/lib/etcd", image,
		"/opt/cp/etcd", "--name=etcd", "--data-dir=/var/lib/etcd/data",
		"--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=etcd=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn")...); err != nil {
		return err
	}
	if _, err := d.Run(ctx, append(common, "--name", c.apiserver,
		"--network-alias", APIServerAlias, "-p", "127.0.0.1::"+APIServerPort,
		"-v", c.dir+":/pki:ro", image,
		"/opt/cp/kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=0.0.0.0",
		"--secure-port="+APIServerPort,
		"--cert-dir=/tmp/apiserver-certs",
		"--tls-cert-file=/pki/apiserver.crt",
		"--tls-private-key-file=/pki/apiserver.key",
		"--client-ca-file=/pki/ca.crt",
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=/pki/sa.pub",
		"--service-account-signing-key-file=/pki/sa.key",
		"--service-cluster-ip-range="+serviceCIDR,
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount",
	)...); err != nil {
		return err
	}
	hostPort, err := d.HostPort(ctx, c.apiserver, APIServerPort+"/tcp")
	if err != nil {
		return err
	}
	c.rest = &rest.Config{
		Host: "https://" + hostPort,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.caPEM, CertData: pki.adminCertPEM, KeyData: pki.adminKeyPEM,
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
	return waitFor(ctx, "kube-apiserver /readyz", nil, func(ctx context.Context) (bool, error) {
		for _, ctr := range []string{c.etcd, c.apiserver} {
			if st, err := d.Run(ctx, "inspect", "--format", "{{.State.Status}}", ctr); err != nil || st != "running" {
				return false, fmt.Errorf("%w: container %s is %q (%v)", ErrComponentExited, ctr, st, err)
			}
		}
		return httpOK(httpClient, c.rest.Host+"/readyz")(ctx)
	})
}

// runtimeImage imports (once) an image holding only the shared libraries
// the control-plane binaries link against, read from this machine with ldd;
// the binaries themselves are mounted read-only.
func (p *ContainerProvider) runtimeImage(ctx context.Context) (string, error) {
	p.imageOnce.Do(func() { p.image, p.imageErr = p.importRuntimeImage(ctx) })
	return p.image, p.imageErr
}

func (p *ContainerProvider) importRuntimeImage(ctx context.Context) (string, error) {
	libs := map[string]bool{}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		out, err := exec.CommandContext(ctx, "ldd", filepath.Join(p.BinDir, b)).Output()
		if err != nil {
			// A static binary: ldd says so and exits non-zero.
			continue
		}
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "/") {
				libs[f] = true
			}
		}
	}
	paths := make([]string, 0, len(libs))
	for l := range libs {
		paths = append(paths, l)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	addDir := func(dir string, mode int64) error {
		if dirs[dir] {
			return nil
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode})
	}
	for _, dir := range []string{"tmp", "opt", "opt/cp", "pki", "var", "var/lib", "var/lib/etcd"} {
		if err := addDir(dir, 0o1777); err != nil {
			return "", err
		}
	}
	for _, l := range paths {
		data, err := os.ReadFile(l)
		if err != nil {
			return "", fmt.Errorf("control-plane image: %w", err)
		}
		rel := strings.TrimPrefix(l, "/")
		parts := strings.Split(filepath.Dir(rel), "/")
		for i := range parts {
			if err := addDir(strings.Join(parts[:i+1], "/"), 0o755); err != nil {
				return "", err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o755, Size: int64(len(data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	ref := "flotilla-e2e/controlplane:" + hex.EncodeToString(sum[:6])
	if p.Docker.HasImage(ctx, ref) {
		return ref, nil
	}
	if _, err := p.Docker.RunInput(ctx, &buf, "import", "-", ref); err != nil {
		return "", fmt.Errorf("control-plane image: %w", err)
	}
	return ref, nil
}
