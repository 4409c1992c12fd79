//go:build !unit

package kubestore

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// TestKubeConnectWritesFromCache: what a hub replica does on every agent
// connection (the agent's certificate checked twice, LastSeen touched, the
// stream's replica recorded, the cluster's capabilities recorded) costs no
// read request: the cluster comes from the watch cache, updates are sent at
// its resourceVersion, capabilities are replaced with one request. After a
// failover hundreds of agents connect at once and those reads (GET before
// each UPDATE, two GETs for the certificate) queued behind the client's rate
// limit.
func TestKubeConnectWritesFromCache(t *testing.T) {
	ns := newTestNamespace(t)
	k, c := openCountingKube(t, ns, store.Options{})
	ctx := t.Context()
	if err := k.CreateCluster(ctx, store.Cluster{Name: "a", CertSerial: "s1"}); err != nil {
		t.Fatal(err)
	}
	waitCacheSynced(t, k)
	c.reset()
	for i := range 5 {
		cl, err := k.CachedCluster(ctx, "a")
		if err != nil || cl.CertSerial != "s1" {
			t.Fatalf("CachedCluster: %+v, %v", cl, err)
		}
		if err := k.UpdateCluster(ctx, "a", func(cl *store.Cluster) error {
			cl.ConnectedTo = fmt.Sprintf("hub%d", i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	seen := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	for range 3 { // one write, then nothing to write
		if err := k.TouchCluster(ctx, "a", seen, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	caps := store.ClusterCapabilities{Cluster: "a", KubeVersion: "v1.31.0", APIVersions: []string{"v1", "apps/v1"}}
	for range 2 {
		caps.ReportedAt = time.Now().UTC()
		if err := k.PutCapabilities(ctx, caps); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	got := fmt.Sprint(c.n)
	c.mu.Unlock()
	if c.get("get clusters") != 0 || c.get("update clusters") != 6 || c.get("get clustercapabilities") != 0 ||
		c.get("create clustercapabilities")+c.get("patch clustercapabilities") > 3 {
		t.Errorf("5 cached reads, 5 updates, 3 touches and 2 capability writes sent %s; want 6 cluster updates, no get", got)
	}
	cl, err := k.GetCluster(ctx, "a")
	if err != nil || cl.ConnectedTo != "hub4" || cl.AgentVersion != "v2" || !cl.LastSeen.Equal(seen) || cl.CertSerial != "s1" {
		t.Fatalf("stored: %+v, %v; want ConnectedTo hub4, agent v2, LastSeen %s", cl, err, seen)
	}
	all, err := k.ListCapabilities(ctx)
	if err != nil || len(all) != 1 || all[0].KubeVersion != "v1.31.0" || len(all[0].APIVersions) != 2 {
		t.Fatalf("capabilities: %+v, %v", all, err)
	}
}

// TestKubeUpdateClusterStaleCache: a decision taken on a stale cached copy
// never overwrites a newer write, and a refusal on it is decided again on
// the API server's copy (a replica whose cache has not seen another's
// write yet).
func TestKubeUpdateClusterStaleCache(t *testing.T) {
	ns := newTestNamespace(t)
	k, c := openCountingKube(t, ns, store.Options{})
	ctx := t.Context()
	if err := k.CreateCluster(ctx, store.Cluster{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	waitCacheSynced(t, k)
	// The cache's copy as it is now, put back after another replica's
	// write: the cache trails that write.
	stale, found, ok := k.cachedObject(ctx, k.cache().clusters, objectName("", "a"))
	if !ok || !found {
		t.Fatal("cluster a not in the cache")
	}
	other := openKube(t, ns, 0)
	if err := other.UpdateCluster(ctx, "a", func(cl *store.Cluster) error {
		cl.Labels, cl.ConnectedTo = map[string]string{"env": "prod"}, "hub2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	restale := func() {
		t.Helper()
		// Wait for the watch to bring the write, then show the old copy.
		for {
			o, _, _ := k.cachedObject(ctx, k.cache().clusters, objectName("", "a"))
			if o != nil && o.GetResourceVersion() != stale.GetResourceVersion() {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := k.cache().clusters.inf.GetIndexer().Update(stale.DeepCopy()); err != nil {
			t.Fatal(err)
		}
	}
	restale()
	// A change on the stale copy conflicts and is made again on a fresh
	// read: the other replica's labels stay.
	if err := k.UpdateCluster(ctx, "a", func(cl *store.Cluster) error {
		cl.AgentVersion = "v9"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cl, err := k.GetCluster(ctx, "a")
	if err != nil || cl.Labels["env"] != "prod" || cl.AgentVersion != "v9" || cl.ConnectedTo != "hub2" {
		t.Fatalf("after an update from a stale cache: %+v, %v; want env=prod kept and v9", cl, err)
	}
	// A refusal on the stale copy (it says the stream's replica is not
	// hub2) is decided again on the API server's copy.
	if err := other.UpdateCluster(ctx, "a", func(cl *store.Cluster) error { cl.ConnectedTo = "hub2"; return nil }); err != nil {
		t.Fatal(err)
	}
	stale, _, _ = k.cachedObject(ctx, k.cache().clusters, objectName("", "a"))
	if err := other.UpdateCluster(ctx, "a", func(cl *store.Cluster) error { cl.ConnectedTo = "hub3"; return nil }); err != nil {
		t.Fatal(err)
	}
	restale()
	errNot := errors.New("not held by hub3")
	c.reset()
	if err := k.UpdateCluster(ctx, "a", func(cl *store.Cluster) error {
		if cl.ConnectedTo != "hub3" {
			return errNot
		}
		cl.ConnectedTo = ""
		return nil
	}); err != nil {
		t.Fatalf("update decided on the stale copy only: %v", err)
	}
	if cl, err := k.GetCluster(ctx, "a"); err != nil || cl.ConnectedTo != "" {
		t.Fatalf("after the refusal on the stale copy: %+v, %v; want ConnectedTo cleared", cl, err)
	}
	if c.get("get clusters") < 1 {
		t.Error("a refusal on the cached copy sent no fresh read")
	}
}
