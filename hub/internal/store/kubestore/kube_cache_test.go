//go:build !unit

package kubestore

import (
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/transport"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// requestCounter counts the requests a store sends, by verb ("list",
// "get", "watch", "create", "update", "delete") and resource (plural).
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) RoundTrip(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.n[requestKind(r)]++
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// requestKind names a request to .../namespaces/NS/PLURAL[/NAME] as
// "verb PLURAL".
func requestKind(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	plural, named := "", false
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			plural = parts[i+2]
			named = i+3 < len(parts)
		}
	}
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodDelete: "delete", http.MethodPatch: "patch"}[r.Method]
	if r.Method == http.MethodGet {
		switch {
		case r.URL.Query().Get("watch") == "true":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	}
	return verb + " " + plural
}

func (c *requestCounter) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

func (c *requestCounter) reset() {
	c.mu.Lock()
	clear(c.n)
	c.mu.Unlock()
}

// openCountingKube opens a store whose requests c counts.
func openCountingKube(t *testing.T, ns string, opts store.Options) (*Store, *requestCounter) {
	t.Helper()
	c := &requestCounter{n: map[string]int{}}
	cfg := testAPIServer(t)
	cfg.Wrap(transport.WrapperFunc(c.RoundTrip))
	k, err := New(cfg, Options{Namespace: ns, HistoryLimit: opts.HistoryLimit}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k, c
}

// waitCacheSynced starts k's watch cache and waits for its first lists.
func waitCacheSynced(t *testing.T, k *Store) {
	t.Helper()
	w := k.cache()
	if !cache.WaitForCacheSync(t.Context().Done(), w.clusters.inf.HasSynced, w.statuses.inf.HasSynced) {
		t.Fatal("watch cache not synced")
	}
}

func clusterNames(t *testing.T, s store.Store) []string {
	t.Helper()
	cs, _, err := s.ListClusters(t.Context(), store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s%v", c.Name, c.Labels))
	}
	return out
}

// TestKubeListClustersFromCache: every reconcile lists the clusters; the
// store answers from its watch cache, not with a list request each time,
// and still shows the caller's own writes at once (an update, a delete, a
// create), and another store's writes once its watch brings them.
func TestKubeListClustersFromCache(t *testing.T) {
	ns := newTestNamespace(t)
	k, c := openCountingKube(t, ns, store.Options{})
	ctx := t.Context()
	for i := range 20 {
		if err := k.CreateCluster(ctx, store.Cluster{Name: fmt.Sprintf("c%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitCacheSynced(t, k)
	c.reset()
	for range 10 {
		if got := clusterNames(t, k); len(got) != 20 {
			t.Fatalf("%d clusters listed, want 20", len(got))
		}
	}
	if n := c.get("list clusters"); n != 0 {
		t.Errorf("10 ListClusters sent %d list requests, want none (the watch cache answers)", n)
	}
	for i := range 5 {
		name := fmt.Sprintf("c%02d", i)
		if err := k.UpdateCluster(ctx, name, func(cl *store.Cluster) error {
			cl.Labels = map[string]string{"round": fmt.Sprint(i)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s%v", name, map[string]string{"round": fmt.Sprint(i)})
		if got := clusterNames(t, k); !contains(got, want) {
			t.Fatalf("after update: %v, want %s", got, want)
		}
	}
	if err := k.DeleteCluster(ctx, "c19"); err != nil {
		t.Fatal(err)
	}
	if got := clusterNames(t, k); len(got) != 19 || contains(got, "c19map[]") {
		t.Fatalf("after delete: %v, want c19 gone", got)
	}
	if err := k.CreateCluster(ctx, store.Cluster{Name: "new"}); err != nil {
		t.Fatal(err)
	}
	if got := clusterNames(t, k); !contains(got, "newmap[]") {
		t.Fatalf("after create: %v, want new", got)
	}
	// Another replica's write reaches this store's cache through the
	// watch; a read from the API server sees it at once.
	other := openKube(t, ns, 0)
	if err := other.CreateCluster(ctx, store.Cluster{Name: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.GetCluster(ctx, "elsewhere"); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestKubeHistoryTrimBounded: appending history does not list the
// (app, cluster)'s entries each time (that made every append cost more as
// history grew, in every replica); entries beyond the limit are trimmed in
// batches, reads never show more than the limit, and the stored count
// stays bounded.
func TestKubeHistoryTrimBounded(t *testing.T) {
	ns := newTestNamespace(t)
	const limit, appends = 8, 60
	k, c := openCountingKube(t, ns, store.Options{HistoryLimit: limit})
	ctx := t.Context()
	for i := range appends {
		if _, err := k.AppendHistory(ctx, store.HistoryEntry{App: "web", Cluster: "a", Revision: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, most := c.get("list historyentries"), appends/historySlack(limit)+1; n > most {
		t.Errorf("%d appends sent %d list requests, want at most %d", appends, n, most)
	}
	es, _, err := k.ListHistory(ctx, "web", "a", store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != limit || es[0].Revision != fmt.Sprint(appends-1) {
		t.Fatalf("ListHistory: %d entries, newest %q; want %d, newest %d", len(es), es[0].Revision, limit, appends-1)
	}
	stored, err := k.listHistory(ctx, "web", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) > limit+historySlack(limit) {
		t.Errorf("%d entries stored, want at most %d", len(stored), limit+historySlack(limit))
	}
}

// TestKubeStatusWriteFromCache: at steady state a changed status costs
// one request (the update of the cluster's status page): the cluster's
// existence and its pages come from the watch cache.
func TestKubeStatusWriteFromCache(t *testing.T) {
	ns := newTestNamespace(t)
	k, c := openCountingKube(t, ns, store.Options{})
	ctx := t.Context()
	if err := k.CreateCluster(ctx, store.Cluster{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := k.PutStatus(ctx, "a", testStatus("web", "r0")); err != nil {
		t.Fatal(err)
	}
	waitCacheSynced(t, k)
	if err := k.PutStatus(ctx, "a", testStatus("web", "r1")); err != nil {
		t.Fatal(err)
	}
	c.reset()
	for i := 2; i < 12; i++ {
		if err := k.PutStatus(ctx, "a", testStatus("web", fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	got := fmt.Sprint(c.n)
	c.mu.Unlock()
	if c.get("update clusterstatuses") != 10 || c.get("get clusters") != 0 || c.get("list clusterstatuses") != 0 {
		t.Errorf("10 status writes sent %s; want 10 updates of clusterstatuses, no get or list", got)
	}
	recs, err := k.ListStatus(ctx, "a")
	if err != nil || len(recs) != 1 || recs[0].Status.GetRevision() != "r11" {
		t.Fatalf("ListStatus: %v, %v; want web at r11", recs, err)
	}
}

// Two replicas write one app's status at once (the agent moved from one
// to the other; the first retries a write from before): the write that
// conflicts is retried from a fresh read, and it does not replace a status
// the agent reported later; a later report of its own is written.
func TestKubeStatusConflictKeepsLaterReport(t *testing.T) {
	ns := newTestNamespace(t)
	ctx := t.Context()
	a := openKube(t, ns, 0)
	at := func(rev string, sec int) *apiv1alpha1.AppStatus {
		st := testStatus("web", rev)
		st.ObservedAt = timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
		return st
	}
	// b's first status update is preceded by a's write of a later
	// report, so b's update carries a stale resourceVersion.
	var once sync.Once
	var raced error
	updates := 0
	cfg := testAPIServer(t)
	cfg.Wrap(transport.WrapperFunc(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if requestKind(r) == "update clusterstatuses" {
				updates++
				once.Do(func() { raced = a.PutStatus(ctx, "c", at("r2", 2)) })
			}
			return rt.RoundTrip(r)
		})
	}))
	b, err := New(cfg, Options{Namespace: ns}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := a.CreateCluster(ctx, store.Cluster{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := a.PutStatus(ctx, "c", at("r0", 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutStatus(ctx, "c", at("r1", 1)); err != nil {
		t.Fatal(err)
	}
	if raced != nil {
		t.Fatal(raced)
	}
	if updates < 1 {
		t.Fatalf("b sent %d status updates; the test wants its first to conflict", updates)
	}
	read := func() string {
		t.Helper()
		recs, err := b.ListStatus(ctx, "c")
		if err != nil || len(recs) != 1 {
			t.Fatalf("ListStatus: %v, %v", recs, err)
		}
		return recs[0].Status.GetRevision()
	}
	if got := read(); got != "r2" {
		t.Errorf("stored web at %s after b's conflicting write of an earlier report; want a's later r2 kept", got)
	}
	if err := b.PutStatus(ctx, "c", at("r3", 3)); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "r3" {
		t.Errorf("stored web at %s; want b's later report r3", got)
	}
}
