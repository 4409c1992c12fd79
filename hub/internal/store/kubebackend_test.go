//go:build !unit

package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/store/kubestore"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
)

// The store's contract tests run against the Kubernetes store too
// (package kubestore; this file is package store_test, so that the store's
// own tests do not link client-go, and only outside the unit tier).
func init() {
	store.AddBackend("kubernetes", func(t testing.TB, historyLimit int) (store.Store, func() store.Store) {
		ns := newTestNamespace(t)
		open := func() store.Store { return openKube(t, ns, historyLimit) }
		return open(), open
	})
}

// The Kubernetes store's tests share one API server (etcd and
// kube-apiserver as processes), started by the first test that needs it;
// each store gets a namespace of its own.
var apiServer struct {
	once sync.Once
	c    cluster.Cluster
	cfg  *rest.Config
	err  error
	n    atomic.Int64
}

func controlPlaneBins() string {
	if d := os.Getenv("FLOTILLA_CONTROL_PLANE_BIN_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "bin")
}

// testAPIServer returns the shared API server's admin config.
func testAPIServer(t testing.TB) *rest.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a kube-apiserver; run without -short")
	}
	apiServer.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		p := &cluster.ProcessProvider{BinDir: controlPlaneBins(), Logger: hclog.NewNullLogger()}
		apiServer.c, apiServer.err = p.Create(ctx, "store")
		if apiServer.err != nil {
			return
		}
		apiServer.cfg = apiServer.c.RESTConfig()
		apiServer.err = kubestore.InstallCRDs(ctx, apiServer.cfg)
	})
	if apiServer.err != nil {
		if errors.Is(apiServer.err, cluster.ErrMissingBinaries) && os.Getenv(cluster.EnvSkipMissingBins) == "1" {
			t.Skipf("skipping: %v", apiServer.err)
		}
		t.Fatalf("API server for the kubernetes store: %v", apiServer.err)
	}
	return rest.CopyConfig(apiServer.cfg)
}

func newTestNamespace(t testing.TB) string {
	t.Helper()
	cfg := testAPIServer(t)
	ns := fmt.Sprintf("store-%d", apiServer.n.Add(1))
	cs := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func openKube(t testing.TB, ns string, historyLimit int) *kubestore.Store {
	t.Helper()
	k, err := kubestore.New(testAPIServer(t), kubestore.Options{Namespace: ns, HistoryLimit: historyLimit}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestMain(m *testing.M) {
	code := m.Run()
	if apiServer.c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := apiServer.c.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop API server:", err)
		}
		cancel()
	}
	os.Exit(code)
}
