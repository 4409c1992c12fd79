//go:build !unit

package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
)

// TestMigrateCommand: a bbolt hub's state moved to the Kubernetes store
// (`flotilla-hub migrate --from bbolt --to kubernetes`) is opened by a
// kubernetes hub with the same CA, tokens and clusters; moved back into a
// fresh state dir it is a bbolt hub's state again, its CA key in its file.
// A destination that is not empty is refused.
func TestMigrateCommand(t *testing.T) {
	ctx := t.Context()
	log := hclog.NewNullLogger()
	c := cluster.Start(t, &cluster.ProcessProvider{BinDir: cluster.ControlPlaneBinDir(), WorkDir: t.TempDir()}, "migrate")
	kopts := StoreOptions{Kind: StoreKubernetes, Namespace: "default", Kubeconfig: c.Kubeconfig(), InstallCRDs: true}

	// A bbolt hub's state: its CA (key in ca.key), a cluster, an API token.
	boltDir := t.TempDir()
	bolt, ca, err := openStore(ctx, filepath.Join(boltDir, "hub.db"), filepath.Join(boltDir, "ca.key"), false, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.CreateCluster(ctx, store.Cluster{Name: "prod", CertSerial: "0a", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	raw, _, err := bolt.CreateAPIToken(ctx, "admin", store.RoleAdmin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}

	n, err := RunMigrate(ctx, MigrateOptions{From: StoreBolt, To: StoreKubernetes, StateDir: boltDir, Store: kopts}, log)
	if err != nil {
		t.Fatal(err)
	}
	if n.Clusters != 1 || n.APITokens != 1 || !n.CA {
		t.Errorf("migrated %+v, want the cluster, the token and the CA", n)
	}
	// A kubernetes hub starting on it has the bbolt hub's CA.
	o := DefaultOptions()
	o.Store = kopts
	kube, kca, _, err := openConfiguredStore(ctx, o, log)
	if err != nil {
		t.Fatal(err)
	}
	if kca.Hash() != ca.Hash() {
		t.Errorf("kubernetes hub's CA %s, want the bbolt hub's %s", kca.Hash(), ca.Hash())
	}
	if _, err := kube.LookupAPIToken(ctx, raw); err != nil {
		t.Errorf("API token after the migration: %v", err)
	}
	if _, err := kube.GetCluster(ctx, "prod"); err != nil {
		t.Error(err)
	}
	kube.Close()

	// Into a store that is not empty: refused.
	if _, err := RunMigrate(ctx, MigrateOptions{From: StoreBolt, To: StoreKubernetes, StateDir: boltDir, Store: kopts}, log); err == nil {
		t.Error("migration into a non-empty kubernetes store succeeded")
	}

	// And back into a fresh state dir.
	back := t.TempDir()
	if _, err := RunMigrate(ctx, MigrateOptions{From: StoreKubernetes, To: StoreBolt, StateDir: back, Store: kopts}, log); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(back, "ca.key"))
	if err != nil || string(key) != string(ca.KeyPEM()) {
		t.Errorf("CA key file after migrating back: %v, want the CA's key", err)
	}
	st, bca, err := openStore(ctx, filepath.Join(back, "hub.db"), filepath.Join(back, "ca.key"), false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if bca.Hash() != ca.Hash() {
		t.Errorf("CA after migrating back %s, want %s", bca.Hash(), ca.Hash())
	}
	if _, stored, _ := st.GetCA(ctx); stored != nil {
		t.Error("the bbolt store holds the CA key; it belongs in ca.key")
	}
	if _, err := st.LookupAPIToken(ctx, raw); err != nil {
		t.Errorf("API token after migrating back: %v", err)
	}
}
