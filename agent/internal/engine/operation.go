package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

var (
	errSuperseded   = errors.New("superseded by a newer bundle")
	errNotPersisted = errors.New("the bundle could not be persisted in the cluster; nothing was applied")
)

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
		a.e.kickOrphans() // what the sync did may have changed what is orphaned
	}()

	start := a.e.clock.Now()
	a.lastOp = &apiv1alpha1.Operation{
		Phase: apiv1alpha1.Operation_PHASE_RUNNING, Revision: a.bundle.GetRevision(), Digest: a.bundle.GetDigest(),
		InitiatedBy: by, StartedAt: timestamppb.New(start),
	}
	a.publish()
	hooks := len(a.hooks) > 0 && hooksDue(by, a.bundle.GetDigest(), a.hooksDone) // the worker's own: no storeMu
	a.changes = newChangeSet()
	err := a.sync(opCtx, prune, hooks)
	if err == nil && hooks {
		err = a.saveHooksDone(opCtx, a.bundle.GetDigest())
	}
	op := a.lastOp
	op.FinishedAt = timestamppb.New(a.e.clock.Now())
	m := a.e.metrics
	m.applyDuration.Observe(a.e.clock.Since(start).Seconds())
	switch {
	case err == nil:
		m.syncs.WithLabelValues(resultSucceeded).Inc()
		op.Phase, op.Message = apiv1alpha1.Operation_PHASE_SUCCEEDED, fmt.Sprintf("synced %d objects", len(a.order))
		if s := a.changes.Summary(); s != "" {
			op.Message += " (" + s + ")"
		}
		if n := len(op.Hooks); n > 0 {
			op.Message += fmt.Sprintf(", ran %d hooks", n)
		}
		a.needSync, a.lastErr, a.retryAt = false, "", time.Time{}
		a.retry.Reset()
		a.log.Info("synced", "digest", op.Digest, "objects", len(a.order), "changes", a.changes.Summary(), "initiated_by", by, "took", a.e.clock.Since(start))
		return nil
	case ctx.Err() == nil && opCtx.Err() != nil:
		m.syncs.WithLabelValues(resultSuperseded).Inc()
		op.Phase, op.Message = apiv1alpha1.Operation_PHASE_FAILED, errSuperseded.Error()
		return errSuperseded
	case errors.Is(err, errNotPersisted):
		// Accept failed to persist the bundle and reconnects: the
		// operation runs again when a bundle is accepted, without backoff.
		m.syncs.WithLabelValues(resultSuperseded).Inc()
		op.Phase, op.Message = apiv1alpha1.Operation_PHASE_FAILED, err.Error()
		return err
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
	if err != nil && hooks && ctx.Err() == nil && !errors.Is(err, errNotPersisted) && hasPhase(a.hooks, manifest.SyncFail) {
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
	// Accept persists a new bundle while the worker loads and dry-runs it:
	// nothing of it is written before it is persisted.
	if !a.persistedLoaded() {
		return errNotPersisted
	}
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
	changes := a.changes
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
			if err := a.prune(ctx, cands, changes, func(c staleObj) bool { return !c.pruneLast && c.wave <= w.num }); err != nil {
				return fmt.Errorf("wave %d: %w", w.num, err)
			}
		}
		last := i == len(waves)-1
		if w.wave != nil && (!last || len(cands) > changes.Count(Pruned) || postSync) {
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
	if err := a.prune(ctx, cands, changes, func(staleObj) bool { return true }); err != nil {
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
	a.mu.Lock()
	stored := a.inventory // Accept may set it (under a.mu)
	a.mu.Unlock()
	if done == "" && sameObjects(entries, stored) {
		// Only the fingerprints changed: they spare a restarted agent
		// dry-runs, and nothing depends on them being stored before the
		// status is reported. reconcile writes them after it published
		// the status (a crash before that costs a restart one dry-run).
		a.laterInv = entries
	} else if err := a.saveRecord(ctx, entries, false, done); err != nil {
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
