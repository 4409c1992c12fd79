package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	"github.com/flotilla-cd/flotilla/agent/internal/health"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// replaceTimeout bounds the wait for a replaced object to be gone.
const replaceTimeout = 2 * time.Minute

var errSuperseded = errors.New("superseded by a newer bundle")

// ErrOwnedByOtherApp is wrapped when an object of the bundle already
// belongs to another app on this cluster.
var ErrOwnedByOtherApp = errors.New("object is managed by another app:")

// runSync runs one sync operation and records it as the last operation.
// A failure schedules a retry with the app's backoff.
func (a *app) runSync(ctx context.Context, by string, prune bool) error {
	opCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.mu.Lock()
	a.opCancel, a.opDigest = cancel, a.bundle.GetDigest()
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.opCancel, a.opDigest = nil, ""
		a.mu.Unlock()
	}()

	start := a.e.clock.Now()
	a.lastOp = &apiv1alpha1.Operation{
		Phase: apiv1alpha1.Operation_PHASE_RUNNING, Revision: a.bundle.GetRevision(), Digest: a.bundle.GetDigest(),
		InitiatedBy: by, StartedAt: timestamppb.New(start),
	}
	a.publish()
	a.storeMu.Lock()
	hooks := len(a.hooks) > 0 && hooksDue(by, a.bundle.GetDigest(), a.hooksDone)
	a.storeMu.Unlock()
	err := a.sync(opCtx, prune, hooks)
	if err == nil && hooks {
		err = a.saveHooksDone(opCtx, a.bundle.GetDigest())
	}
	op := a.lastOp
	op.FinishedAt = timestamppb.Now()
	m := a.e.metrics
	m.applyDuration.Observe(a.e.clock.Since(start).Seconds())
	switch {
	case err == nil:
		m.syncs.WithLabelValues(resultSucceeded).Inc()
		op.Phase, op.Message = apiv1alpha1.Operation_PHASE_SUCCEEDED, fmt.Sprintf("synced %d objects", len(a.order))
		if n := len(op.Hooks); n > 0 {
			op.Message += fmt.Sprintf(", ran %d hooks", n)
		}
		a.needSync, a.lastErr, a.retryAt = false, "", time.Time{}
		a.retry.Reset()
		a.log.Info("synced", "digest", op.Digest, "objects", len(a.order), "initiated_by", by, "took", a.e.clock.Since(start))
		return nil
	case ctx.Err() == nil && opCtx.Err() != nil:
		m.syncs.WithLabelValues(resultSuperseded).Inc()
		op.Phase, op.Message = apiv1alpha1.Operation_PHASE_FAILED, errSuperseded.Error()
		return errSuperseded
	}
	m.syncs.WithLabelValues(resultFailed).Inc()
	op.Phase, op.Message = apiv1alpha1.Operation_PHASE_FAILED, err.Error()
	a.lastErr = err.Error()
	if at, ok := retryAfter(a.retry, a.e.clock.Now()); ok {
		a.needSync, a.retryAt, a.retryBy, a.retryPrune = true, at, by, prune
		a.log.Warn("sync failed", "error", err, "retry_at", at)
	} else {
		a.needSync = false
		a.lastErr += " (retries exhausted)"
		a.log.Error("sync failed, retries exhausted", "error", err)
	}
	return err
}

// sync runs one sync operation: with hooks, the PreSync hooks, then the
// Sync phase (waves of objects and Sync hooks), then, once every object is
// Healthy, the PostSync hooks; when it fails, the SyncFail hooks.
func (a *app) sync(ctx context.Context, prune, hooks bool) error {
	err := a.syncPhases(ctx, prune, hooks)
	if err != nil && hooks && ctx.Err() == nil && hasPhase(a.hooks, manifest.SyncFail) {
		if ferr := a.runHookPhase(ctx, manifest.SyncFail); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	return err
}

// syncPhases applies the loaded bundle wave by wave and prunes what left
// it, running the hooks of each phase when hooks is set.
func (a *app) syncPhases(ctx context.Context, prune, hooks bool) error {
	// Nothing is written unless the API server accepts every object.
	start := a.e.clock.Now()
	pf, err := a.validate(ctx)
	if err != nil {
		return err
	}
	if hooks {
		if err := a.dryRunHooks(ctx); err != nil {
			return err
		}
	}
	a.log.Debug("bundle dry-run passed", "objects", len(a.order), "deferred", len(pf.deferred), "took", a.e.clock.Since(start))
	a.valid = a.bundle.GetDigest()
	if ns := a.bundle.GetNamespace(); a.createsDestination() {
		if exists, looked := pf.nsExists[ns]; !exists {
			if err := a.ensureNamespace(ctx, ns, looked); err != nil {
				return err
			}
		}
	}
	// Record every desired object before writing any, so that a crash
	// mid-sync never leaves an object the inventory does not know.
	if err := a.saveInventory(ctx, a.desiredEntries(), true); err != nil {
		return err
	}
	cands, kept, err := a.findStale(ctx, prune)
	if err != nil {
		return err
	}
	if hooks {
		if err := a.runHookPhase(ctx, manifest.PreSync); err != nil {
			return err
		}
	}
	pruned := map[manifest.Key]bool{}
	a.applied = map[manifest.Key]bool{}
	defer func() { a.applied = nil }()
	var syncHooks [][]*hookSpec
	if hooks {
		syncHooks = phaseWaves(a.hooks, manifest.Sync)
	}
	postSync := hooks && hasPhase(a.hooks, manifest.PostSync)
	waves := mergeWaves(a.waves, syncHooks)
	for i, w := range waves {
		if err := a.applyWave(ctx, pf, w.wave); err != nil {
			return err
		}
		runs, err := a.startHooks(ctx, w.hooks)
		if err != nil {
			a.finishHooks(ctx, runs)
			return fmt.Errorf("wave %d: Sync hooks: %w", w.num, err)
		}
		if !a.syncOpts.PruneLast {
			if err := a.prune(ctx, cands, pruned, func(c staleObj) bool { return !c.pruneLast && c.wave <= w.num }); err != nil {
				return fmt.Errorf("wave %d: %w", w.num, err)
			}
		}
		last := i == len(waves)-1
		if w.wave != nil && (!last || len(cands) > len(pruned) || postSync) {
			if err := a.waitHealthy(ctx, a.waveKeys(*w.wave), fmt.Sprintf("wave %d", w.num)); err != nil {
				return err
			}
		}
		if len(runs) > 0 {
			err := a.waitHooks(ctx, runs)
			a.finishHooks(ctx, runs)
			if err != nil {
				return fmt.Errorf("wave %d: Sync hooks: %w", w.num, err)
			}
		}
	}
	if err := a.prune(ctx, cands, pruned, func(staleObj) bool { return true }); err != nil {
		return err
	}
	a.stale = kept
	entries := a.desiredEntries()
	for _, k := range kept {
		entries = append(entries, k.entry)
	}
	// Without PostSync hooks the operation has succeeded: record its
	// hooks as done in the same write.
	var done string
	if hooks && !postSync {
		done = a.bundle.GetDigest()
	}
	if err := a.saveRecord(ctx, entries, false, done); err != nil {
		return err
	}
	if postSync {
		// PostSync runs once every object is Healthy (Argo CD).
		if err := a.waitHealthy(ctx, a.order, "before PostSync hooks"); err != nil {
			return err
		}
		return a.runHookPhase(ctx, manifest.PostSync)
	}
	return nil
}

// applyWave applies the steps of one wave of objects (nil: none).
func (a *app) applyWave(ctx context.Context, pf *preflight, w *apply.Wave) error {
	if w == nil {
		return nil
	}
	for _, step := range w.Steps {
		if err := a.validateStep(ctx, pf, step); err != nil {
			return fmt.Errorf("wave %d, %s: %w", w.Wave, step.Phase, err)
		}
		if err := a.applyStep(ctx, step); err != nil {
			return fmt.Errorf("wave %d, %s: %w", w.Wave, step.Phase, err)
		}
		for _, o := range step.Objects {
			a.applied[manifest.KeyOf(o)] = true
		}
		if step.Phase == apply.PhaseCRDs {
			if err := a.waitCRDs(ctx, step); err != nil {
				return fmt.Errorf("wave %d: %w", w.Wave, err)
			}
		}
	}
	return nil
}

func (a *app) waveKeys(w apply.Wave) []manifest.Key {
	var keys []manifest.Key
	for _, s := range w.Steps {
		for _, o := range s.Objects {
			keys = append(keys, manifest.KeyOf(o))
		}
	}
	return keys
}

// ensureNamespace creates the destination namespace (CreateNamespace=true)
// unless it exists (looked: validate found it missing already). It carries
// no tracking id: like Argo CD, the app never prunes it.
func (a *app) ensureNamespace(ctx context.Context, name string, looked bool) error {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	if !looked {
		if _, found, err := a.e.applier.Get(ctx, ns.GroupVersionKind(), "", name); err != nil || found {
			return err
		}
	}
	if _, err := a.e.applier.Apply(ctx, ns, false); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// applyStep applies the objects of one step in parallel.
func (a *app) applyStep(ctx context.Context, step apply.Step) error {
	states := make([]*objState, len(step.Objects))
	for i, o := range step.Objects {
		states[i] = a.objs[manifest.KeyOf(o)]
	}
	return parallel(ctx, a.e.opts.Parallelism, states, func(ctx context.Context, st *objState) error {
		return a.applyObject(ctx, st)
	})
}

// applyObject makes the live object match st.desired. It relies on the
// dry-run of this sync (validate, validateStep): an object the dry-run found
// equal to its live state carries that state's fingerprint and is skipped
// while the live object keeps it; any other is written, without a second
// dry-run (an apply that changes nothing writes nothing).
func (a *app) applyObject(ctx context.Context, st *objState) error {
	if err := a.mapObject(ctx, st); err != nil {
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
		return err
	}
	live, found := a.e.cache.Get(st.gvr, st.key.Namespace, st.key.Name)
	if err := a.ownerConflict(st, live); err != nil {
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
		return err
	}
	if found {
		if diff.Fingerprint(live) == st.liveFP {
			st.sync, st.message, st.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, "", ""
			return nil
		}
		live = a.withManagedFields(ctx, st, live)
	}
	_, err := a.write(ctx, st, live)
	return err
}

// ownerConflict refuses to take over an object that another app held by
// this agent owns, so two apps never fight over one object. Objects of apps
// the agent no longer holds may be adopted.
func (a *app) ownerConflict(st *objState, live *unstructured.Unstructured) error {
	if live == nil {
		return nil
	}
	other, _, ok := manifest.ParseTrackingID(live.GetAnnotations()[manifest.TrackingAnnotation])
	if !ok || other == a.name || !a.e.holds(other) {
		return nil
	}
	return fmt.Errorf("%s: %w %s", st.key, ErrOwnedByOtherApp, other)
}

// write server-side applies st.desired over live (nil when missing),
// keeping the live values of ignored fields, and replaces the object when an
// immutable field changed and Replace=true or Force=true allows it.
func (a *app) write(ctx context.Context, st *objState, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	a.takeOver(ctx, st, live)
	desired := diff.RespectIgnored(st.key, a.rules, st.desired, live)
	out, err := a.e.applier.Apply(ctx, desired, false)
	if err != nil && apply.IsImmutable(err) {
		if a.mayReplace(st) {
			a.log.Info("replacing object after immutable field change", "object", st.key.String())
			out, err = a.e.applier.Replace(ctx, desired, replaceTimeout)
		}
	}
	if err != nil {
		st.objMemory = st.failed(err)
		return nil, err
	}
	st.objMemory = written(st.objMemory, out.GetResourceVersion(), diff.Fingerprint(out), a.e.clock.Now())
	return out, nil
}

// waitCRDs waits until the CRDs of step are Established and their kinds are
// served.
func (a *app) waitCRDs(ctx context.Context, step apply.Step) error {
	keys := make([]manifest.Key, 0, len(step.Objects))
	defined := map[schema.GroupKind]bool{}
	for _, o := range step.Objects {
		keys = append(keys, manifest.KeyOf(o))
		g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		defined[schema.GroupKind{Group: g, Kind: k}] = true
	}
	if err := a.waitHealthy(ctx, keys, "CRDs established"); err != nil {
		return err
	}
	var gvks []schema.GroupVersionKind
	for _, st := range a.objs {
		if gvk := st.desired.GroupVersionKind(); defined[gvk.GroupKind()] {
			gvks = append(gvks, gvk)
		}
	}
	if len(gvks) == 0 {
		return nil
	}
	return a.e.applier.Mapper().WaitFor(ctx, gvks, 30*time.Second)
}

// waitHealthy waits until every object of keys is Healthy in the watch
// cache (in the version our last write produced or newer). A Degraded
// object fails the wait.
func (a *app) waitHealthy(ctx context.Context, keys []manifest.Key, what string) error {
	for {
		changed := a.e.cache.Changed()
		var waiting []string
		for _, k := range keys {
			st := a.objs[k]
			live, ok := a.e.cache.Get(st.gvr, k.Namespace, k.Name)
			if !ok || !fresh(live.GetResourceVersion(), st.appliedRV) {
				waiting = append(waiting, k.String())
				continue
			}
			switch h := health.Of(live); h.Status {
			case apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY:
			case apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED:
				return fmt.Errorf("%s: %s is Degraded: %s", what, k, h.Message)
			default:
				waiting = append(waiting, k.String())
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		a.checkApplied(ctx)
		a.publish()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %d objects to be healthy (first %s): %w", what, len(waiting), waiting[0], ctx.Err())
		case <-changed:
		}
	}
}

// checkApplied handles watch events, during a wait, for the objects this
// sync has already written, so that self-heal and drift reports do not stall
// behind a long wave.
func (a *app) checkApplied(ctx context.Context) {
	a.mu.Lock()
	var keys []manifest.Key
	for k := range a.dirty {
		if a.applied[k] {
			keys = append(keys, k)
			delete(a.dirty, k)
		}
	}
	a.mu.Unlock()
	if len(keys) > 0 {
		a.check(ctx, keys, false)
	}
}

// fresh reports whether a live resourceVersion is at least applied.
// resourceVersions are compared as numbers when both are (etcd-backed
// servers), else for equality.
func fresh(live, applied string) bool {
	if applied == "" || live == applied {
		return true
	}
	l, err1 := strconv.ParseUint(live, 10, 64)
	p, err2 := strconv.ParseUint(applied, 10, 64)
	return err1 == nil && err2 == nil && l >= p
}

// older reports whether a live resourceVersion is known to be older than
// applied: both are numbers (etcd-backed servers) and live is the smaller.
func older(live, applied string) bool {
	l, err1 := strconv.ParseUint(live, 10, 64)
	p, err2 := strconv.ParseUint(applied, 10, 64)
	return err1 == nil && err2 == nil && l < p
}

// parallel runs fn over items with at most n at once and joins the errors
// (at most 10 are kept, plus a count).
func parallel[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	if len(items) == 1 {
		return fn(ctx, items[0])
	}
	var (
		mu     sync.Mutex
		errs   []error
		failed int
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, n)
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				failed++
				if len(errs) < 10 {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more errors", failed-len(errs)))
	}
	return errors.Join(errs...)
}
