package agentapi_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// cachedStore is a store with a watch cache of the clusters, as the
// Kubernetes store of hub replicas has: CachedCluster answers from a copy
// the test sets (possibly stale); GetCluster (the API server) is counted.
type cachedStore struct {
	*store.Bolt
	mu     sync.Mutex
	cached map[string]store.Cluster
	gets   int
	cgets  int
}

func (s *cachedStore) GetCluster(ctx context.Context, name string) (store.Cluster, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.Bolt.GetCluster(ctx, name)
}

func (s *cachedStore) CachedCluster(ctx context.Context, name string) (store.Cluster, error) {
	s.mu.Lock()
	s.cgets++
	c, ok := s.cached[name]
	s.mu.Unlock()
	if !ok {
		return s.GetCluster(ctx, name)
	}
	return c, nil
}

func (s *cachedStore) counts() (gets, cached int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, s.cgets
}

// waitChecked waits until the stream's handler made its checks (the
// cache read n times in all), closes the stream and waits until its
// handler is done.
func waitChecked(t *testing.T, h *hub, cs *cachedStore, s *stream, n int) {
	t.Helper()
	until(t, func() bool {
		_, cached := cs.counts()
		return cached >= n && h.fleet.HasSession("a")
	})
	s.close()
	until(t, func() bool { return !h.fleet.HasSession("a") })
}

func until(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-deadline:
			t.Fatal("condition not met within 30s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestConnectChecksFromCache: with a store that has a watch cache of the
// clusters, the two certificate checks of a connection read the cache, not
// the API server (after a failover hundreds of agents connect at once); a
// certificate the cached copy does not admit as current (an enrolment
// through another replica the cache has not seen yet) is checked against
// the API server's copy, and a revoked one is still refused.
func TestConnectChecksFromCache(t *testing.T) {
	cs := &cachedStore{cached: map[string]store.Cluster{}}
	h := startHubWrapped(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{}, func(b *store.Bolt) store.Store {
		cs.Bolt = b
		return cs
	})
	ctx := t.Context()
	old := h.enroll("a")
	c, err := h.st.GetCluster(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	cs.mu.Lock()
	cs.cached["a"], cs.gets, cs.cgets = c, 0, 0
	cs.mu.Unlock()
	s := connectOK(t, ctx, h, old)
	waitChecked(t, h, cs, s, 2)
	if gets, cached := cs.counts(); gets != 0 || cached != 2 {
		t.Errorf("a connection read the cluster %d times from the API server and %d from the cache; want 0 and 2", gets, cached)
	}

	// Re-enrolled through another replica: the cache still has the old
	// certificate; the new one is admitted from the API server's copy.
	cur := h.enroll("a")
	s = connectOK(t, ctx, h, cur)
	waitChecked(t, h, cs, s, 4)
	if gets, _ := cs.counts(); gets == 0 {
		t.Error("a certificate the cached copy does not know was admitted without the API server's copy")
	}
	// The old certificate, current in the stale cache, is refused once the
	// cache has the re-enrolment; revoked, the current one too.
	c, err = h.st.GetCluster(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	cs.mu.Lock()
	cs.cached["a"] = c
	cs.mu.Unlock()
	if _, err := old.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("connect with the superseded certificate: %v; want PermissionDenied", err)
	}
	if err := h.st.UpdateCluster(ctx, "a", func(c *store.Cluster) error { c.Revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	c.Revoked = true
	cs.mu.Lock()
	cs.cached["a"] = c
	cs.mu.Unlock()
	if _, err := cur.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("connect with a revoked certificate: %v; want PermissionDenied", err)
	}
}
