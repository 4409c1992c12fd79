package engine

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	"github.com/flotilla-cd/flotilla/agent/internal/health"
	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"

	"sync"
	"sync/atomic"
)

// objState is what the worker knows about one desired object.
type objState struct {
	key     manifest.Key
	desired *unstructured.Unstructured // prepared: tracking annotation, label, namespace
	hash    string                     // diff.Hash of desired
	wave    int
	gvr     schema.GroupVersionResource
	mapped  bool
	// namespaced is the scope of gvr (valid once mapped)
	namespaced bool
	// objMemory holds the verdict and what the decisions (decide.go)
	// remember between two looks.
	objMemory
	// health cache, keyed by the live resourceVersion
	healthRV string
	health   health.Result
}

// syncRequest is a SYNC command waiting for its result.
type syncRequest struct {
	initiatedBy string
	prune       bool
	done        chan error
}

// app is one application. Fields under "worker" are owned by the worker
// goroutine; the rest are guarded as marked.
type app struct {
	e    *Engine
	name string
	log  hclog.Logger
	wake chan struct{}

	started bool         // guarded by e.mu
	managed atomic.Int64 // objects of the loaded bundle, for metrics

	mu          sync.Mutex // guards the fields below
	pending     *apiv1alpha1.Bundle
	removed     bool
	syncReqs    []*syncRequest
	refreshReqs []chan struct{}
	dirty       map[manifest.Key]struct{}
	opCancel    context.CancelFunc
	opDigest    string
	status      *apiv1alpha1.AppStatus
	statusSeq   uint64                      // the number of status (Engine.statusSeq)
	orphaned    *apiv1alpha1.OrphanedReport // the last look for orphaned objects (orphans.go)
	held        string                      // digest of the persisted bundle
	saving      string                      // digest Accept is persisting
	snapshot    []*objState                 // desired objects and rules for DIFF, immutable once set
	snapRules   []diff.Rule

	// storeMu serialises store writes; guards persisted, inventory and
	// hooksDone. Only the worker writes inventory and hooksDone, so the
	// worker reads them without it.
	storeMu   sync.Mutex
	persisted *apiv1alpha1.Bundle
	inventory []inventory.Entry
	hooksDone string // digest whose hooks an operation ran to success

	// worker
	want     *apiv1alpha1.Bundle // accepted bundle
	bundle   *apiv1alpha1.Bundle // loaded bundle (nil when loading failed)
	loadErr  error
	failedAt string // digest whose load failed
	// policyGen is the cluster policy generation the bundle was planned
	// under; a newer one plans it again.
	policyGen uint64
	changes   *ChangeSet // what the running (or last) sync did
	policy    *apiv1alpha1.SyncPolicy
	syncOpts  apply.SyncOptions
	rules     []diff.Rule
	objs      map[manifest.Key]*objState
	order     []manifest.Key
	waves     []apply.Wave
	hooks     []*hookSpec               // the bundle's hooks, one per phase, in run order
	stale     map[manifest.Key]staleObj // left-over objects kept, with the reason
	// laterInv is the inventory a sync ended with when it differs from
	// the stored one in fingerprints only: written once the status is
	// published (flushInventory), off the path of the report.
	laterInv []inventory.Entry
	needSync bool
	// valid is the digest of the loaded bundle once the dry-run of a sync
	// accepted all of it. Until then drift is reported but not healed
	// object by object, so that a bundle the API server refuses in part is
	// never applied in part.
	valid      string
	lastErr    string
	lastOp     *apiv1alpha1.Operation
	retry      backoff.BackOff
	retryAt    time.Time
	retryBy    string
	retryPrune bool
	done       bool
	gone       bool // guarded by mu: forgotten by the engine
}

func (e *Engine) newApp(name string) *app {
	return &app{
		e: e, name: name, log: e.log.With("app", name),
		wake:  make(chan struct{}, 1),
		dirty: map[manifest.Key]struct{}{},
		objs:  map[manifest.Key]*objState{},
		stale: map[manifest.Key]staleObj{},
	}
}

func (a *app) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *app) markDirty(k manifest.Key) {
	a.mu.Lock()
	a.dirty[k] = struct{}{}
	a.mu.Unlock()
	a.poke()
}

func (a *app) heldDigest() (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held, a.removed
}

// run is the worker loop.
func (a *app) run(ctx context.Context) {
	clk := a.e.clock
	timer := clk.NewTimer(time.Hour)
	defer timer.Stop()
	a.poke()
	for {
		select {
		case <-ctx.Done():
			a.failRequests(ctx.Err())
			return
		case <-a.wake:
		case <-timer.C():
		}
		next := a.reconcile(ctx)
		if a.done {
			return
		}
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(next.Sub(clk.Now()), time.Millisecond))
		}
	}
}

func (a *app) failRequests(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.syncReqs {
		r.done <- err
	}
	a.syncReqs = nil
	for _, r := range a.refreshReqs {
		close(r)
	}
	a.refreshReqs = nil
}

// reconcile does one round of work and returns when it wants to run again
// (zero: only on a wake-up).
func (a *app) reconcile(ctx context.Context) time.Time {
	a.mu.Lock()
	if a.pending != nil {
		a.want = a.pending
		a.pending = nil
	}
	removed := a.removed
	syncReqs := a.syncReqs
	a.syncReqs = nil
	refresh := a.refreshReqs
	a.refreshReqs = nil
	dirty := a.dirty
	a.dirty = map[manifest.Key]struct{}{}
	a.mu.Unlock()

	if removed {
		a.failRequestsList(syncReqs, refresh, errAppRemoved)
		return a.remove(ctx)
	}
	now := a.e.clock.Now()
	gen := a.e.opts.Policy.Gen()
	if a.want != nil && (a.bundle == nil || a.bundle.GetDigest() != a.want.GetDigest() || a.policyGen != gen) && (a.loadErr == nil || a.failedAt != a.want.GetDigest() || a.policyGen != gen || !now.Before(a.retryAt)) {
		a.policyGen = gen
		a.load(ctx, a.want)
	}
	if a.loadErr != nil {
		a.failRequestsList(syncReqs, refresh, a.loadErr)
		a.publish()
		return a.retryAt
	}
	if len(refresh) > 0 && a.persistedLoaded() {
		a.check(ctx, a.order, true)
	}
	switch {
	case len(syncReqs) > 0:
		by, prune := syncReqs[0].initiatedBy, false
		for _, r := range syncReqs {
			prune = prune || r.prune
		}
		err := a.runSync(ctx, by, prune)
		for _, r := range syncReqs {
			r.done <- err
		}
	case a.needSync && !now.Before(a.retryAt):
		_ = a.runSync(ctx, a.retryBy, a.retryPrune) // recorded in the status; retried again on failure
	default:
		keys := make([]manifest.Key, 0, len(dirty))
		for k := range dirty {
			keys = append(keys, k)
		}
		for k, st := range a.objs {
			if !st.healAt.IsZero() && !now.Before(st.healAt) {
				st.healAt = time.Time{}
				if _, ok := dirty[k]; !ok {
					keys = append(keys, k)
				}
			}
		}
		if len(keys) > 0 {
			a.check(ctx, keys, false)
		}
	}
	for _, r := range refresh {
		close(r)
	}
	a.publish()
	a.flushInventory(ctx)
	return a.nextWake()
}

// flushInventory writes the inventory a sync left for after the status
// report (laterInv). A failure is logged only: what it loses is the
// fingerprints, which the next sync writes again.
func (a *app) flushInventory(ctx context.Context) {
	inv := a.laterInv
	if inv == nil {
		return
	}
	a.laterInv = nil
	if err := a.saveInventory(ctx, inv, false); err != nil {
		a.log.Warn("inventory fingerprints not stored", "error", err)
	}
}

func (a *app) failRequestsList(syncReqs []*syncRequest, refresh []chan struct{}, err error) {
	for _, r := range syncReqs {
		r.done <- err
	}
	for _, r := range refresh {
		close(r)
	}
}

func (a *app) nextWake() time.Time {
	var next time.Time
	if a.needSync && !a.retryAt.IsZero() {
		next = a.retryAt
	}
	for _, st := range a.objs {
		if !st.healAt.IsZero() && (next.IsZero() || st.healAt.Before(next)) {
			next = st.healAt
		}
	}
	return next
}
