package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KindProvider creates clusters with the kind CLI (`kind create cluster`),
// which needs Docker or Podman. It is selected with
// FLOTILLA_E2E_PROVIDER=kind; it is not exercised where no container engine
// exists.
type KindProvider struct {
	// Binary is the kind executable; empty means "kind" from PATH.
	Binary string
	// Image is the node image (--image); empty means kind's default.
	Image string
	// WorkDir is where per-cluster directories (kubeconfig, kind output) are
	// created; empty means the system temp directory.
	WorkDir string
	// Wait is passed to --wait (control plane Ready); 0 means 3 minutes.
	Wait time.Duration
	// Logger receives lifecycle events; nil means no logging.
	Logger hclog.Logger
}

var _ Provider = (*KindProvider)(nil)

// KindCluster is a cluster created by KindProvider.
type KindCluster struct {
	p          *KindProvider
	name       string
	kindName   string // name of the kind cluster: flotilla-<name>-<random>
	dir        string
	kubeconfig string
	rest       *rest.Config
	logger     hclog.Logger

	stopOnce sync.Once
	stopErr  error
}

var _ Cluster = (*KindCluster)(nil)

// Create runs `kind create cluster --name flotilla-<name>-<random>
// --kubeconfig <dir>/kubeconfig --wait <Wait>`; name must be a lowercase DNS
// label. On error it deletes the cluster again.
func (p *KindProvider) Create(ctx context.Context, name string) (Cluster, error) {
	logger := p.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if p.WorkDir != "" {
		if err := os.MkdirAll(p.WorkDir, 0o755); err != nil {
			return nil, fmt.Errorf("create kind cluster %s: work dir: %w", name, err)
		}
	}
	dir, err := os.MkdirTemp(p.WorkDir, "flotilla-kind-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("create kind cluster %s: %w", name, err)
	}
	// kind cluster names are global on the Docker host; a suffix keeps
	// concurrent test packages and the developer's own clusters apart.
	kindName := "flotilla-" + name + "-" + strings.ToLower(rand.Text()[:6])
	c := &KindCluster{p: p, name: name, kindName: kindName, dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig"),
		logger: logger.Named("cluster").With("cluster", name, "provider", "kind", "kind_cluster", kindName)}

	wait := p.Wait
	if wait == 0 {
		wait = 3 * time.Minute
	}
	args := []string{"create", "cluster", "--name", c.kindName, "--kubeconfig", c.kubeconfig, "--wait", wait.String()}
	if p.Image != "" {
		args = append(args, "--image", p.Image)
	}
	if err := c.kind(ctx, args...); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("create kind cluster %s: %w", name, err)
	}
	c.rest, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("create kind cluster %s: load %s: %w", name, c.kubeconfig, err)
	}
	c.logger.Info("cluster ready", "server", c.rest.Host)
	return c, nil
}

// Name implements Cluster.
func (c *KindCluster) Name() string { return c.name }

// Kubeconfig implements Cluster.
func (c *KindCluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig implements Cluster.
func (c *KindCluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// KindName is the name of the kind cluster (for the kind CLI and Docker):
// flotilla-<name>-<random>.
func (c *KindCluster) KindName() string { return c.kindName }

// Dump implements Cluster: it writes the kind CLI output. Node and
// component logs need `kind export logs --name <KindName>`.
func (c *KindCluster) Dump(w io.Writer) {
	b, err := os.ReadFile(c.logPath())
	if err != nil {
		fmt.Fprintf(w, "==== kind cluster %s: read %s: %v ====\n", c.name, c.logPath(), err)
		return
	}
	fmt.Fprintf(w, "==== kind cluster %s: kind output (node logs: kind export logs --name %s) ====\n%s\n",
		c.name, c.kindName, strings.TrimRight(string(b), "\n"))
}

// Stop implements Cluster: `kind delete cluster`, then removes the cluster
// directory.
func (c *KindCluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		if err := c.kind(ctx, "delete", "cluster", "--name", c.kindName, "--kubeconfig", c.kubeconfig); err != nil {
			c.stopErr = fmt.Errorf("stop kind cluster %s: %w", c.name, err)
		}
		if err := os.RemoveAll(c.dir); err != nil && c.stopErr == nil {
			c.stopErr = fmt.Errorf("stop kind cluster %s: remove %s: %w", c.name, c.dir, err)
		}
	})
	return c.stopErr
}

func (c *KindCluster) logPath() string { return filepath.Join(c.dir, "kind.log") }

// kind runs the kind CLI, appending its output to the cluster's kind.log.
func (c *KindCluster) kind(ctx context.Context, args ...string) error {
	bin := c.p.Binary
	if bin == "" {
		bin = "kind"
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if f, ferr := os.OpenFile(c.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); ferr == nil {
		fmt.Fprintf(f, "$ %s %s\n%s", bin, strings.Join(args, " "), out.String())
		_ = f.Close()
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
