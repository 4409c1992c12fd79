package agentapi

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// statusWriter keeps agents' status reports in the store off the stream's
// receive path: the in-memory fleet view is updated at once, and the store
// gets the newest status of each (cluster, app) in batches that share one
// fsync. A status lost in a crash is repaired when the agent reconnects,
// since agents send every status on each new stream.
type statusWriter struct {
	store   store.Store
	log     hclog.Logger
	running atomic.Bool

	mu      sync.Mutex
	pending map[statusKey]pendingStatus
	wake    chan struct{}
}

type statusKey struct{ cluster, app string }

type pendingStatus struct {
	st *apiv1alpha1.AppStatus
}

func newStatusWriter(st store.Store, log hclog.Logger) *statusWriter {
	return &statusWriter{store: st, log: log, pending: map[statusKey]pendingStatus{}, wake: make(chan struct{}, 1)}
}

// put records st for cluster: queued when run is active, written at once
// otherwise.
func (w *statusWriter) put(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus) {
	if !w.running.Load() {
		w.write(ctx, cluster, st)
		return
	}
	w.mu.Lock()
	w.pending[statusKey{cluster, st.GetApp()}] = pendingStatus{st}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *statusWriter) write(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus) {
	var err error
	if st.GetRemoved() {
		err = w.store.DeleteStatus(ctx, cluster, st.GetApp())
	} else {
		err = w.store.PutStatus(ctx, cluster, st)
	}
	if err != nil {
		w.log.Warn("store status", "cluster", cluster, "app", st.GetApp(), "error", err)
	}
}

// run writes queued statuses until ctx ends, then writes what is left.
func (w *statusWriter) run(ctx context.Context) {
	w.running.Store(true)
	// Writes are not cancelled with ctx: a batch taken from the queue is
	// written whole, also at shutdown.
	wctx := context.WithoutCancel(ctx)
	defer func() {
		w.running.Store(false)
		w.flush(wctx)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
			w.flush(wctx)
		}
	}
}

// flush writes every queued status concurrently, so the store's batching
// commits them together.
func (w *statusWriter) flush(ctx context.Context) {
	w.mu.Lock()
	batch := w.pending
	w.pending = map[statusKey]pendingStatus{}
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for k, p := range batch {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.write(ctx, k.cluster, p.st)
		}()
	}
	wg.Wait()
}
