package agentapi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// statusWriter keeps agents' status reports in the store off the stream's
// receive path: the in-memory fleet view is updated at once, and the store
// gets the newest status of each (cluster, app) in batches that share one
// fsync. A write that fails (the store's API server overloaded or out of
// reach) is retried with backoff unless a newer status of the same app came
// meanwhile: other hub replicas read statuses from the store, so a dropped
// write would leave them showing an old state while this replica shows the
// new one. A status lost in a crash is repaired when the agent reconnects,
// since agents send every status on each new stream.
//
// With a store other hubs write too (fenced), a status is written only
// while the stream that brought it is open: once it ended, the agent may
// hold a stream on another replica, which records what the agent sends
// it. A write retried from here after that (this replica was cut off from
// the API server, closed its streams, and came back) would replace the
// newer status with an older one.
type statusWriter struct {
	store   store.Store
	fenced  bool
	log     hclog.Logger
	running atomic.Bool
	// retry paces the retries of failed writes; used by flush only (one at
	// a time).
	retry backoff.BackOff

	mu      sync.Mutex
	pending map[statusKey]pendingStatus
	wake    chan struct{}
	// writing counts the statuses of the flush in progress not yet done.
	writing atomic.Int64
}

// waiting returns how many statuses are queued, being written or waiting
// for a retry.
func (w *statusWriter) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) + int(w.writing.Load())
}

type statusKey struct{ cluster, app string }

// statusWriteClusters bounds the clusters whose statuses are being written
// at once (one request each in the Kubernetes store). Other replicas show
// an agent's status only once it is written: after a commit every agent
// of a replica reports at once, and at 16 in flight a third of 1,000
// agents took seconds to get through.
const statusWriteClusters = 32

type pendingStatus struct {
	st *apiv1alpha1.AppStatus
	// ended is closed when the stream that brought st ends (nil: never).
	ended <-chan struct{}
}

// streamEnded reports whether the stream that brought the status ended.
func (p pendingStatus) streamEnded() bool {
	select {
	case <-p.ended:
		return true
	default:
		return false
	}
}

func newStatusWriter(st store.Store, fenced bool, log hclog.Logger) *statusWriter {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 200*time.Millisecond, 30*time.Second, 0
	return &statusWriter{store: st, fenced: fenced, log: log, retry: b, pending: map[statusKey]pendingStatus{}, wake: make(chan struct{}, 1)}
}

// put records st for cluster, brought by a stream that ends when ended is
// closed: queued when run is active, written at once otherwise.
func (w *statusWriter) put(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus, ended <-chan struct{}) {
	p := pendingStatus{st, ended}
	if !w.running.Load() {
		w.write(ctx, cluster, p)
		return
	}
	w.mu.Lock()
	w.pending[statusKey{cluster, st.GetApp()}] = p
	w.mu.Unlock()
	w.poke()
}

func (w *statusWriter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// write stores p's status and reports whether a failure is worth
// retrying (a status that is invalid, or whose cluster is gone, is not).
// With a fenced store, a status whose stream ended is not written.
func (w *statusWriter) write(ctx context.Context, cluster string, p pendingStatus) (retry bool) {
	st := p.st
	if w.fenced && p.streamEnded() {
		w.log.Info("store status: not written, its stream ended (the agent sends it again on its next stream, to whichever replica)", "cluster", cluster, "app", st.GetApp())
		return false
	}
	var err error
	if st.GetRemoved() {
		err = w.store.DeleteStatus(ctx, cluster, st.GetApp())
	} else {
		err = w.store.PutStatus(ctx, cluster, st)
	}
	if err == nil {
		return false
	}
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
		w.log.Warn("store status: dropped", "cluster", cluster, "app", st.GetApp(), "error", err)
		return false
	}
	w.log.Warn("store status: will retry", "cluster", cluster, "app", st.GetApp(), "error", err)
	return true
}

// run writes queued statuses until ctx ends, then writes what is left.
func (w *statusWriter) run(ctx context.Context) {
	w.running.Store(true)
	// Writes are not cancelled with ctx: a batch taken from the queue is
	// written whole, also at shutdown (once: what fails then is left to
	// the agents, which send every status again when they reconnect).
	wctx := context.WithoutCancel(ctx)
	defer func() {
		w.running.Store(false)
		w.flush(wctx)
		w.mu.Lock()
		clear(w.pending)
		w.mu.Unlock()
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

// flush writes every queued status: the statuses of one cluster together
// (the store writes them in one batch), statusWriteClusters clusters at a
// time (a Kubernetes store's API server is shared and consensus-backed;
// hundreds of writes at once only queue there and slow every replica).
func (w *statusWriter) flush(ctx context.Context) {
	w.mu.Lock()
	batch := w.pending
	w.pending = map[statusKey]pendingStatus{}
	w.writing.Add(int64(len(batch)))
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	byCluster := map[string][]statusKey{}
	for k := range batch {
		byCluster[k.cluster] = append(byCluster[k.cluster], k)
	}
	sem := make(chan struct{}, statusWriteClusters)
	var wg sync.WaitGroup
	var failedMu sync.Mutex
	failed := map[statusKey]pendingStatus{}
	for _, keys := range byCluster {
		sem <- struct{}{}
		var cw sync.WaitGroup
		for _, k := range keys {
			cw.Go(func() {
				if w.write(ctx, k.cluster, batch[k]) {
					failedMu.Lock()
					failed[k] = batch[k]
					failedMu.Unlock()
					return // still waiting: counted until requeued
				}
				w.writing.Add(-1)
			})
		}
		wg.Go(func() {
			cw.Wait()
			<-sem
		})
	}
	wg.Wait()
	if len(failed) == 0 {
		w.retry.Reset()
		return
	}
	w.mu.Lock()
	for k, p := range failed {
		if _, newer := w.pending[k]; !newer {
			w.pending[k] = p
		}
	}
	w.writing.Add(-int64(len(failed)))
	w.mu.Unlock()
	d := w.retry.NextBackOff()
	w.log.Warn("store status: writes failed; retrying", "statuses", len(failed), "in", d)
	time.AfterFunc(d, w.poke)
}
