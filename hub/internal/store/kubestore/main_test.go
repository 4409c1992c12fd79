//go:build !unit

package kubestore

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/rest"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// The Kubernetes store's tests share one API server, started by the first
// test that needs it; each store gets a namespace of its own.
var apiServer = cluster.Shared{Name: "store", Setup: InstallCRDs}

func testAPIServer(t testing.TB) *rest.Config { return apiServer.Config(t) }

func newTestNamespace(t testing.TB) string { return apiServer.Namespace(t, "store") }

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
	apiServer.Stop()
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
