package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// dumpLines is how many log lines per component Dump prints.
const dumpLines = 40

// ProcessCluster is a cluster created by ProcessProvider.
type ProcessCluster struct {
	name       string
	dir        string
	kubeconfig string
	rest       *rest.Config
	logger     hclog.Logger
	timings    Timings
	// kubeletPort is where kwok serves the fake node's kubelet API;
	// podLog is the CRI-format file it serves as every pod's log (Full).
	kubeletPort int
	podLog      string

	mu       sync.Mutex
	comps    []*component
	stopping bool
	dead     chan struct{} // closed when a component exits before Stop
	deadOnce sync.Once

	stopOnce sync.Once
	stopped  chan struct{}
	stopErr  error
}

// PodLogFile is the file kwok serves, through the API server's pods/log,
// as the log of every container of the cluster (empty unless Full). Lines
// appended to it in CRI format ("<RFC3339Nano> stdout F <text>") are what
// `kubectl logs -f` shows.
func (c *ProcessCluster) PodLogFile() string { return c.podLog }

// Timings are the durations of cluster creation, measured from its start.
type Timings struct {
	// EtcdReady is when etcd first answered /health (includes generating
	// the certificates and keys).
	EtcdReady time.Duration
	// APIServerReady is when kube-apiserver first answered /readyz.
	APIServerReady time.Duration
	// Ready is when Create returned (Full: Node Ready and default
	// ServiceAccount present).
	Ready time.Duration
}

var _ Cluster = (*ProcessCluster)(nil)

// Name implements Cluster.
func (c *ProcessCluster) Name() string { return c.name }

// Kubeconfig implements Cluster.
func (c *ProcessCluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig implements Cluster.
func (c *ProcessCluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Dir is the cluster directory: certificates, kubeconfig, etcd data and one
// <component>.log per process. Stop removes it.
func (c *ProcessCluster) Dir() string { return c.dir }

// Timings reports how long creation took.
func (c *ProcessCluster) Timings() Timings { return c.timings }

// PIDs returns the process ids of the components (each also the id of the
// component's process group), in start order.
func (c *ProcessCluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := make([]int, 0, len(c.comps))
	for _, comp := range c.comps {
		pids = append(pids, comp.pid())
	}
	return pids
}

// RSSBytes returns the summed resident memory of the cluster's processes,
// read from /proc (Linux only).
func (c *ProcessCluster) RSSBytes() (int64, error) {
	var sum int64
	for _, pid := range c.PIDs() {
		rss, err := processRSS(pid)
		if err != nil {
			return 0, err
		}
		sum += rss
	}
	return sum, nil
}

// Dump implements Cluster: it writes the last lines of every component log.
// Call it before Stop, which removes the logs.
func (c *ProcessCluster) Dump(w io.Writer) {
	c.mu.Lock()
	comps := slices.Clone(c.comps)
	c.mu.Unlock()
	dumpLogs(w, c.name, comps, dumpLines)
}

// Stop implements Cluster: it stops the components in reverse start order
// (SIGTERM to each process group, SIGKILL after a grace period or when ctx
// ends), waits for them to be reaped and removes the cluster directory.
func (c *ProcessCluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		defer close(c.stopped)
		c.mu.Lock()
		c.stopping = true
		comps := slices.Clone(c.comps)
		c.mu.Unlock()
		for i := len(comps) - 1; i >= 0; i-- {
			comps[i].kill(ctx)
		}
		if err := os.RemoveAll(c.dir); err != nil {
			c.stopErr = fmt.Errorf("stop cluster %s: remove %s: %w", c.name, c.dir, err)
		}
		c.logger.Debug("cluster stopped")
	})
	<-c.stopped
	return c.stopErr
}

// componentExited runs when a component process ends; outside Stop that is
// a failure, which aborts any readiness wait.
func (c *ProcessCluster) componentExited(comp *component) {
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if stopping {
		return
	}
	c.logger.Error("component exited", "component", comp.name, "error", comp.waitErr, "log", comp.logPath)
	c.deadOnce.Do(func() { close(c.dead) })
}

// writeKubeconfig writes a kubeconfig for cfg's host and client certificate.
func writeKubeconfig(path, name string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// processRSS reads VmRSS of pid from /proc/<pid>/status.
func processRSS(pid int) (int64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// VmRSS:	  123456 kB
		rest, ok := strings.CutPrefix(s.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS in %s: %w", path, err)
		}
		return kb * 1024, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, fmt.Errorf("read memory of pid %d: %w", pid, errors.New("no VmRSS line"))
}
