//go:build !unit

package kubestore

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

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// These helpers are the same as the store's contract tests' (package
// store, kubebackend_test.go): the tests of the store's internals here
// get an API server of their own.

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
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "bin")
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
		apiServer.err = InstallCRDs(ctx, apiServer.cfg)
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

func openKube(t testing.TB, ns string, historyLimit int) *Store {
	t.Helper()
	k, err := New(testAPIServer(t), Options{Namespace: ns, HistoryLimit: historyLimit}, hclog.NewNullLogger())
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

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func histEntry(app, cluster string, i int) store.HistoryEntry {
	return store.HistoryEntry{
		App: app, Cluster: cluster, Revision: fmt.Sprintf("rev%d", i), Digest: fmt.Sprintf("sha256:%d", i),
		StartedAt: t0.Add(time.Duration(i) * time.Second), FinishedAt: t0.Add(time.Duration(i)*time.Second + 500*time.Millisecond),
		InitiatedBy: "automated", Result: store.ResultSucceeded,
	}
}

func testStatus(app, rev string) *apiv1alpha1.AppStatus {
	return &apiv1alpha1.AppStatus{
		App:      app,
		Digest:   "sha256:" + app + rev,
		Revision: rev,
		Sync:     apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED,
		Health:   apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
		Objects: []*apiv1alpha1.ObjectStatus{
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: app, Name: app,
				Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY},
		},
		ObservedAt: timestamppb.New(t0),
	}
}
