package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Accept persists new bundles (each replacing its app's previous one) and
// marks removed apps, then schedules their sync or clean-up. It returns once
// everything is persisted. A bundle whose digest does not match its content
// is refused (and named in the error); the others are still accepted.
func (e *Engine) Accept(ctx context.Context, bundles []*apiv1alpha1.Bundle, removed []string) error {
	var errs []error
	valid := make([]*apiv1alpha1.Bundle, 0, len(bundles))
	for _, b := range bundles {
		if err := manifest.VerifyDigest(b); err != nil {
			errs = append(errs, fmt.Errorf("refuse bundle: %w", err))
			continue
		}
		valid = append(valid, b)
	}
	// Apps persist independently, each in a few API writes; many at a
	// time keeps a first Hello with many apps fast (etcd commits
	// concurrent writes together).
	if err := parallel(ctx, acceptParallelism, valid, e.acceptBundle); err != nil {
		errs = append(errs, err)
	}
	for _, name := range removed {
		if err := e.acceptRemoval(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

const acceptParallelism = 32

// lockApp returns the live app named name (created when create is set)
// with its storeMu held, or nil.
func (e *Engine) lockApp(name string, create bool) *app {
	for {
		e.mu.Lock()
		a := e.apps[name]
		if a == nil && create {
			a = e.newApp(name)
			e.apps[name] = a
			delete(e.tombstones, name)
			e.start(a)
		}
		e.mu.Unlock()
		if a == nil {
			return nil
		}
		a.storeMu.Lock()
		a.mu.Lock()
		gone := a.gone
		a.mu.Unlock()
		if !gone {
			return a
		}
		a.storeMu.Unlock() // removed meanwhile; look again
	}
}

func (e *Engine) acceptBundle(ctx context.Context, b *apiv1alpha1.Bundle) error {
	a := e.lockApp(b.GetApp(), true)
	defer a.storeMu.Unlock()
	a.mu.Lock()
	same := a.held == b.GetDigest() && !a.removed
	prevPending, prevRemoved := a.pending, a.removed
	if !same {
		// The worker loads and dry-runs b while it is persisted; it
		// writes nothing of b to the cluster, and reports no sync state
		// of b, before b is persisted (persistedLoaded waits for
		// storeMu, held here until then).
		a.pending, a.removed, a.saving = b, false, b.GetDigest()
		if a.opCancel != nil && a.opDigest != b.GetDigest() {
			a.opCancel()
		}
	}
	a.mu.Unlock()
	if same {
		return nil // already persisted and scheduled
	}
	a.poke()
	inv := a.inventory
	if a.persisted == nil && len(b.GetObjectsGzip()) <= inventory.InlineBytes {
		// A new, small app: its objects go in the inventory now, in the
		// same write as its bundle, so that the sync's own record of
		// them before it writes any (crash safety) finds them there and
		// writes nothing. Should they differ, the sync writes the
		// record as before; entries of objects never created cost one
		// read when the next sync looks for left-overs.
		inv = unionEntries(inv, a.plannedEntries(b))
	}
	rec := &inventory.Record{App: a.name, Bundle: b, Inventory: inv, HooksDone: a.hooksDone}
	if err := e.store.Save(ctx, rec); err != nil {
		// Not accepted: the worker goes back to what it had before.
		a.mu.Lock()
		a.removed, a.saving = prevRemoved, ""
		switch {
		case a.pending == b:
			a.pending = prevPending
		case a.persisted != nil:
			a.pending = a.persisted // taken by the worker: load the persisted one again
		}
		a.mu.Unlock()
		a.poke()
		return fmt.Errorf("accept bundle %s of app %s: %w", b.GetDigest(), a.name, err)
	}
	a.persisted = b
	a.mu.Lock()
	a.held, a.saving = b.GetDigest(), ""
	a.inventory = inv // see setInventory
	a.mu.Unlock()
	return nil
}

// persistedLoaded reports whether the loaded bundle is the persisted one,
// waiting while Accept persists a bundle (it holds storeMu meanwhile). The
// worker calls it before it writes anything of a newly accepted bundle or
// reports its sync state.
func (a *app) persistedLoaded() bool {
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	return a.persisted != nil && a.persisted.GetDigest() == a.bundle.GetDigest()
}

func (e *Engine) acceptRemoval(ctx context.Context, name string) error {
	a := e.lockApp(name, false)
	if a == nil {
		return nil
	}
	defer a.storeMu.Unlock()
	if a.persisted != nil {
		rec := &inventory.Record{App: a.name, Bundle: a.persisted, Removed: true, Inventory: a.inventory, HooksDone: a.hooksDone}
		if err := e.store.SaveInventory(ctx, rec); err != nil {
			return fmt.Errorf("accept removal of app %s: %w", name, err)
		}
	}
	a.mu.Lock()
	a.pending, a.removed = nil, true
	if a.opCancel != nil {
		a.opCancel()
	}
	a.mu.Unlock()
	a.poke()
	return nil
}
