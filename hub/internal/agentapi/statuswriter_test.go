package agentapi

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Queued statuses reach the store, the newest per (cluster, app) wins, a
// removal deletes, and whatever is queued when the writer stops is written.
func TestStatusWriter(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	for _, c := range []string{"a", "b"} {
		if err := st.CreateCluster(ctx, store.Cluster{Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	w := newStatusWriter(st, false, hclog.NewNullLogger())
	// Not running: written at once.
	w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "gone", Digest: "d0"}, nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.run(runCtx); close(done) }()
	for !w.running.Load() {
		select {
		case <-done:
			t.Fatal("writer stopped")
		default:
		}
	}
	for i := range 200 {
		for _, c := range []string{"a", "b"} {
			w.put(ctx, c, &apiv1alpha1.AppStatus{App: fmt.Sprintf("app%03d", i%100), Digest: fmt.Sprintf("d%d", i)}, nil)
		}
	}
	w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "gone", Removed: true}, nil)
	cancel()
	<-done
	recs, err := st.ListStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 200 {
		t.Fatalf("%d statuses stored, want 200 (100 apps on 2 clusters, the removed one gone)", len(recs))
	}
	for _, r := range recs {
		var n int
		if _, err := fmt.Sscanf(r.Status.GetApp(), "app%d", &n); err != nil {
			t.Fatalf("app name %q: %v", r.Status.GetApp(), err)
		}
		if want := fmt.Sprintf("d%d", n+100); r.Status.GetDigest() != want {
			t.Fatalf("%s/%s: digest %s, want the newest %s", r.Cluster, r.Status.GetApp(), r.Status.GetDigest(), want)
		}
	}
}

// flakyStore fails the first fails writes of one app's status, as a
// store whose API server is overloaded does, and tells each write.
type flakyStore struct {
	store.Store
	app    string
	fails  int
	mu     sync.Mutex
	writes chan string // "ok DIGEST" or "failed DIGEST"
}

func (f *flakyStore) PutStatus(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus) error {
	if st.GetApp() == f.app {
		f.mu.Lock()
		fail := f.fails > 0
		f.fails--
		f.mu.Unlock()
		if fail {
			f.writes <- "failed " + st.GetDigest()
			return fmt.Errorf("put status of app %s on cluster %s: the server was unable to return a response in the time allotted", st.GetApp(), cluster)
		}
		defer func() { f.writes <- "ok " + st.GetDigest() }()
	}
	return f.Store.PutStatus(ctx, cluster, st)
}

// A failed status write is retried until it lands (other replicas read
// statuses from the store), and a newer status of the same app that came
// meanwhile is the one written, never the older retried one after it.
func TestStatusWriterRetriesFailedWrites(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	if err := st.CreateCluster(ctx, store.Cluster{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyStore{Store: st, app: "web", fails: 3, writes: make(chan string, 100)}
	start := func(retry time.Duration) *statusWriter {
		w := newStatusWriter(flaky, false, hclog.NewNullLogger())
		w.retry = &backoff.ConstantBackOff{Interval: retry}
		runCtx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		go w.run(runCtx)
		for !w.running.Load() {
			runtime.Gosched()
		}
		return w
	}
	w := start(time.Millisecond)
	next := func() string {
		select {
		case s := <-flaky.writes:
			return s
		case <-time.After(time.Minute):
			t.Fatal("no status write within a minute")
			return ""
		}
	}
	w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "web", Digest: "d1"}, nil)
	var seen []string
	for s := ""; s != "ok d1"; {
		s = next()
		seen = append(seen, s)
	}
	if diff := cmp.Diff([]string{"failed d1", "failed d1", "failed d1", "ok d1"}, seen); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	recs, err := st.ListStatus(ctx, "a")
	if err != nil || len(recs) != 1 || recs[0].Status.GetDigest() != "d1" {
		t.Fatalf("stored %+v, %v; want web at d1", recs, err)
	}

	// A newer status queued while the older one waits for its retry wins.
	flaky.mu.Lock()
	flaky.fails = 1
	flaky.mu.Unlock()
	w = start(time.Hour) // its retry timer never fires in this test
	w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "web", Digest: "d2"}, nil)
	if s := next(); s != "failed d2" {
		t.Fatalf("write %q, want the failed d2", s)
	}
	w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "web", Digest: "d3"}, nil)
	if s := next(); s != "ok d3" {
		t.Fatalf("write %q, want d3 (newer than the failed d2)", s)
	}
	select {
	case s := <-flaky.writes:
		t.Fatalf("write %q after d3; the failed d2 must not be written after the newer d3", s)
	default:
	}
	recs, err = st.ListStatus(ctx, "a")
	if err != nil || len(recs) != 1 || recs[0].Status.GetDigest() != "d3" {
		t.Fatalf("stored %+v, %v; want web at d3", recs, err)
	}
}

// gateStore holds every status write until released, and records how
// many clusters' writes are in flight at once and which apps.
type gateStore struct {
	store.Store
	mu       sync.Mutex
	inFlight map[string]map[string]bool // cluster → apps being written
	most     int
	release  chan struct{}
	released sync.Once
}

func (g *gateStore) PutStatus(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus) error {
	g.mu.Lock()
	if g.inFlight[cluster] == nil {
		g.inFlight[cluster] = map[string]bool{}
	}
	g.inFlight[cluster][st.GetApp()] = true
	g.most = max(g.most, len(g.inFlight))
	if len(g.inFlight) > statusWriteClusters {
		g.released.Do(func() { close(g.release) }) // over the bound: let the test end
	}
	g.mu.Unlock()
	<-g.release
	g.mu.Lock()
	delete(g.inFlight[cluster], st.GetApp())
	if len(g.inFlight[cluster]) == 0 {
		delete(g.inFlight, cluster)
	}
	g.mu.Unlock()
	return nil
}

// The status writer writes at most statusWriteClusters clusters at once
// (it used to start 256 writes: an API server shared by every replica
// only queued them), each cluster's statuses together (the Kubernetes
// store writes those in one batch).
func TestStatusWriterBoundsClusters(t *testing.T) {
	g := &gateStore{inFlight: map[string]map[string]bool{}, release: make(chan struct{})}
	w := newStatusWriter(g, false, hclog.NewNullLogger())
	const clusters, apps = 100, 3
	for c := range clusters {
		for a := range apps {
			w.pending[statusKey{fmt.Sprintf("c%03d", c), fmt.Sprintf("app%d", a)}] = pendingStatus{st: &apiv1alpha1.AppStatus{App: fmt.Sprintf("app%d", a)}}
		}
	}
	done := make(chan struct{})
	go func() { w.flush(t.Context()); close(done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		g.mu.Lock()
		n, full, over := len(g.inFlight), 0, g.most > statusWriteClusters
		for _, as := range g.inFlight {
			if len(as) == apps {
				full++
			}
		}
		g.mu.Unlock()
		if over || (n >= statusWriteClusters && full == n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clusters in flight (%d with all %d apps), want %d with all", n, full, apps, statusWriteClusters)
		}
		runtime.Gosched()
	}
	g.released.Do(func() { close(g.release) })
	<-done
	if g.most > statusWriteClusters {
		t.Errorf("%d clusters written at once, want at most %d", g.most, statusWriteClusters)
	}
}

// With a store other replicas write (fenced), a failed status write is
// retried only while the stream that brought the status is open: once it
// ended (this replica lost its API server and closed its streams) the
// agent went to another replica, which wrote what the agent sent it, and
// the retry after this replica came back would overwrite that newer
// status with the older one. Without fencing (one hub) it is retried.
func TestStatusWriterFencedDropsEndedStreams(t *testing.T) {
	for _, fenced := range []bool{true, false} {
		t.Run(fmt.Sprintf("fenced=%v", fenced), func(t *testing.T) {
			st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx := t.Context()
			if err := st.CreateCluster(ctx, store.Cluster{Name: "a"}); err != nil {
				t.Fatal(err)
			}
			flaky := &flakyStore{Store: st, app: "web", fails: 1, writes: make(chan string, 100)}
			w := newStatusWriter(flaky, fenced, hclog.NewNullLogger())
			w.retry = &backoff.ConstantBackOff{Interval: time.Hour} // the test pokes instead
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan struct{})
			go func() { w.run(runCtx); close(done) }()
			for !w.running.Load() {
				runtime.Gosched()
			}
			stream := make(chan struct{})
			w.put(ctx, "a", &apiv1alpha1.AppStatus{App: "web", Digest: "old"}, stream)
			select {
			case s := <-flaky.writes:
				if s != "failed old" {
					t.Fatalf("write %q, want the failed old", s)
				}
			case <-time.After(time.Minute):
				t.Fatal("no status write within a minute")
			}
			// The stream ends; meanwhile another replica stores the
			// agent's newer status.
			close(stream)
			if err := st.PutStatus(ctx, "a", &apiv1alpha1.AppStatus{App: "web", Digest: "new"}); err != nil {
				t.Fatal(err)
			}
			// The API server is back and the retry comes: a flush of
			// what is queued (the writer stops and writes what is left).
			if n := w.waiting(); n != 1 {
				t.Errorf("%d statuses waiting after the failed write, want 1", n)
			}
			w.poke()
			cancel()
			<-done
			if n := w.waiting(); n != 0 {
				t.Errorf("%d statuses waiting after the last flush, want 0", n)
			}
			recs, err := st.ListStatus(ctx, "a")
			if err != nil || len(recs) != 1 {
				t.Fatalf("stored %+v, %v", recs, err)
			}
			want := "new"
			if !fenced {
				want = "old" // one hub: nobody else writes; its retry lands
			}
			if got := recs[0].Status.GetDigest(); got != want {
				t.Errorf("stored web at %s, want %s", got, want)
			}
		})
	}
}
