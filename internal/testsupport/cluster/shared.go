package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Shared is one API server (etcd and kube-apiserver as processes) that the
// tests of one test binary share: the first test that asks for it starts
// it, each test takes a namespace of its own, and TestMain stops it. The
// zero value is ready to use once Name is set.
type Shared struct {
	// Name names the cluster (its work folder and logs).
	Name string
	// Setup, when set, runs once after the API server is up (CRDs, for
	// example); its error fails every test that asks for the server.
	Setup func(ctx context.Context, cfg *rest.Config) error

	once sync.Once
	c    Cluster
	cfg  *rest.Config
	err  error
	n    atomic.Int64
}

// Config returns the shared API server's admin config, starting it on first
// use. Under `go test -short` the test is skipped; missing binaries fail the
// test (or skip it with FLOTILLA_E2E_SKIP_MISSING_BINS=1).
func (s *Shared) Config(t testing.TB) *rest.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a kube-apiserver; run without -short")
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		p := &ProcessProvider{BinDir: ControlPlaneBinDir(), Logger: hclog.NewNullLogger()}
		s.c, s.err = p.Create(ctx, s.Name)
		if s.err != nil {
			return
		}
		s.cfg = s.c.RESTConfig()
		if s.Setup != nil {
			s.err = s.Setup(ctx, s.cfg)
		}
	})
	if s.err != nil {
		if errors.Is(s.err, ErrMissingBinaries) && os.Getenv(EnvSkipMissingBins) == "1" {
			t.Skipf("skipping: %v", s.err)
		}
		t.Fatalf("API server %s: %v", s.Name, s.err)
	}
	return rest.CopyConfig(s.cfg)
}

// Namespace creates a namespace of its own for the calling test, named
// prefix-N, on the shared API server.
func (s *Shared) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(s.Config(t))
	ns := fmt.Sprintf("%s-%d", prefix, s.n.Add(1))
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// Stop stops the API server if a test started it; for TestMain, after
// m.Run.
func (s *Shared) Stop() {
	if s.c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.c.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "stop API server %s: %v\n", s.Name, err)
	}
}

// ControlPlaneBinDir is where tests find the control-plane binaries:
// $FLOTILLA_CONTROL_PLANE_BIN_DIR, else bin/ at the root of the module that
// holds the working directory (a test runs in its package's folder).
func ControlPlaneBinDir() string {
	if d := os.Getenv("FLOTILLA_CONTROL_PLANE_BIN_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return "bin"
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "bin")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "bin")
		}
	}
}
