//go:build !unit

package store_test

import (
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"
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

// The Kubernetes store's tests share one API server, started by the first
// test that needs it; each store gets a namespace of its own.
var apiServer = cluster.Shared{Name: "store", Setup: kubestore.InstallCRDs}

func testAPIServer(t testing.TB) *rest.Config { return apiServer.Config(t) }

func newTestNamespace(t testing.TB) string { return apiServer.Namespace(t, "store") }

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
	apiServer.Stop()
	os.Exit(code)
}
