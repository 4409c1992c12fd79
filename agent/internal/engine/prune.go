package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

var errAppRemoved = errors.New("app was removed")

// staleObj is an inventory object that left the bundle and still exists.
type staleObj struct {
	entry     inventory.Entry
	live      *unstructured.Unstructured
	wave      int
	pruneLast bool
	reason    string // why it is kept; empty for prune candidates
	// ignoreExtraneous: kept, it does not make the app OutOfSync
	// (compare-options: IgnoreExtraneous).
	ignoreExtraneous bool
}

func entryOf(k manifest.Key, gvk schema.GroupVersionKind) inventory.Entry {
	return inventory.Entry{Group: k.Group, Version: gvk.Version, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}
}

func (a *app) desiredEntries() []inventory.Entry {
	out := make([]inventory.Entry, 0, len(a.order))
	for _, k := range a.order {
		st := a.objs[k]
		e := entryOf(k, st.desired.GroupVersionKind())
		if st.liveFP != "" {
			e.Hash, e.FP = st.hash, st.liveFP
		}
		out = append(out, e)
	}
	return out
}

// sameObjects reports whether two inventories name the same objects (with
// the same versions), whatever their fingerprints.
func sameObjects(x, y []inventory.Entry) bool {
	if len(x) != len(y) {
		return false
	}
	set := make(map[inventory.Entry]int, len(x))
	for _, e := range x {
		e.Hash, e.FP = "", ""
		set[e]++
	}
	for _, e := range y {
		e.Hash, e.FP = "", ""
		if set[e] == 0 {
			return false
		}
		set[e]--
	}
	return true
}

// saveInventory persists the inventory: entries added to the current one
// (union: existing entries are kept as they are) or replacing it. Nothing is
// written when it does not change.
func (a *app) saveInventory(ctx context.Context, entries []inventory.Entry, union bool) error {
	return a.saveRecord(ctx, entries, union, "")
}

// saveRecord is saveInventory that also records, when hooksDone is set,
// that an operation ran the hooks of that digest to success (in the same
// write).
func (a *app) saveRecord(ctx context.Context, entries []inventory.Entry, union bool, hooksDone string) error {
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	var inv []inventory.Entry
	if union {
		inv = unionEntries(a.inventory, entries)
	} else {
		inv = unionEntries(nil, entries)
	}
	done := a.hooksDone
	if hooksDone != "" {
		done = hooksDone
	}
	if (slices.Equal(inv, a.inventory) && done == a.hooksDone) || a.persisted == nil {
		return nil
	}
	rec := &inventory.Record{App: a.name, Bundle: a.persisted, Inventory: inv, HooksDone: done}
	if err := a.e.store.SaveInventory(ctx, rec); err != nil {
		return err
	}
	a.setInventory(inv)
	a.hooksDone = done
	return nil
}

// setInventory records inv as the persisted inventory; storeMu must be
// held. a.mu guards it too, for restoreFingerprints, which reads it while
// Accept may hold storeMu.
func (a *app) setInventory(inv []inventory.Entry) {
	a.mu.Lock()
	a.inventory = inv
	a.mu.Unlock()
}

// unionEntries returns cur with the entries of add whose objects it does
// not list yet (an entry of cur is kept as it is), sorted by key.
func unionEntries(cur, add []inventory.Entry) []inventory.Entry {
	byKey := make(map[manifest.Key]inventory.Entry, len(cur)+len(add))
	for _, e := range cur {
		byKey[e.Key()] = e
	}
	for _, e := range add {
		if _, ok := byKey[e.Key()]; !ok {
			byKey[e.Key()] = e
		}
	}
	inv := make([]inventory.Entry, 0, len(byKey))
	for _, e := range byKey {
		inv = append(inv, e)
	}
	slices.SortFunc(inv, func(x, y inventory.Entry) int {
		switch kx, ky := x.Key(), y.Key(); {
		case kx.Less(ky):
			return -1
		case ky.Less(kx):
			return 1
		}
		return 0
	})
	return inv
}

// saveHooksDone records that an operation ran the hooks of digest to
// success.
func (a *app) saveHooksDone(ctx context.Context, digest string) error {
	if err := a.saveRecord(ctx, nil, true, digest); err != nil {
		return fmt.Errorf("record hooks of app %s as done: %w", a.name, err)
	}
	return nil
}

// findStale reads the inventory objects that are no longer desired. It
// returns the prune candidates and the ones kept (not owned by this app any
// more are dropped silently: the agent never deletes what it does not own).
func (a *app) findStale(ctx context.Context, prune bool) (cands []staleObj, kept map[manifest.Key]staleObj, err error) {
	a.storeMu.Lock()
	inv := slices.Clone(a.inventory)
	a.storeMu.Unlock()
	kept = map[manifest.Key]staleObj{}
	var todo []inventory.Entry
	hooks := map[manifest.Key]bool{}
	for _, s := range a.hooks {
		hooks[s.key] = true
	}
	for _, e := range inv {
		// An object that became a hook is no left-over: its hook run
		// replaces it (BeforeHookCreation), and it leaves the inventory.
		if _, ok := a.objs[e.Key()]; !ok && !hooks[e.Key()] {
			todo = append(todo, e)
		}
	}
	var mu sync.Mutex
	err = parallel(ctx, a.e.opts.Parallelism, todo, func(ctx context.Context, e inventory.Entry) error {
		live, found, err := a.e.applier.Get(ctx, e.GVK(), e.Namespace, e.Name)
		if err != nil {
			return fmt.Errorf("read left-over object %s: %w", e.Key(), err)
		}
		if !found || !apply.OwnedBy(a.name, live) {
			return nil
		}
		so := staleObj{entry: e, live: live}
		so.wave, _ = apply.WaveOf(live)
		oo := apply.ObjectOptionsOf(live)
		so.pruneLast, so.ignoreExtraneous = oo.PruneLast, oo.IgnoreExtraneous
		switch {
		case oo.NoPrune:
			so.reason = "left the bundle; kept because of sync option Prune=false"
		case !prune:
			so.reason = "left the bundle; requires pruning (prune is off)"
		}
		mu.Lock()
		defer mu.Unlock()
		if so.reason != "" {
			kept[e.Key()] = so
		} else {
			cands = append(cands, so)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return cands, kept, nil
}

// prune deletes the candidates selected by pick that are not yet pruned,
// namespaced objects first and Namespaces last.
func (a *app) prune(ctx context.Context, cands []staleObj, changes *ChangeSet, pick func(staleObj) bool) error {
	var todo []staleObj
	for _, c := range cands {
		if !changes.Has(c.entry.Key()) && pick(c) {
			todo = append(todo, c)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	for _, group := range byDeleteOrder(todo, func(c staleObj) manifest.Key { return c.entry.Key() }, func(c staleObj) bool { return c.live.GetNamespace() != "" }) {
		err := parallel(ctx, a.e.opts.Parallelism, group, func(ctx context.Context, c staleObj) error {
			return a.e.applier.DeleteWith(ctx, c.live.GroupVersionKind(), c.live.GetNamespace(), c.live.GetName(), string(c.live.GetUID()), a.syncOpts.PrunePropagation)
		})
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		for _, c := range group {
			changes.Add(c.entry.Key(), Pruned)
			a.log.Info("pruned object", "object", c.entry.Key().String())
		}
	}
	return nil
}

// byDeleteOrder groups items for deletion: namespaced objects, then other
// cluster-scoped objects, then CRDs, then Namespaces.
func byDeleteOrder[T any](items []T, key func(T) manifest.Key, namespaced func(T) bool) [][]T {
	groups := make([][]T, 4)
	for _, it := range items {
		k := key(it)
		switch {
		case k.Group == "" && k.Kind == "Namespace":
			groups[3] = append(groups[3], it)
		case apply.IsCRD(k.GroupKind()):
			groups[2] = append(groups[2], it)
		case namespaced(it):
			groups[0] = append(groups[0], it)
		default:
			groups[1] = append(groups[1], it)
		}
	}
	out := groups[:0]
	for _, g := range groups {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// remove cleans up an app the hub removed: with prune on it deletes every
// object it owns and the live instances of its hooks, then it drops its
// persisted record. Like Argo CD's
// non-cascading delete, with prune off the objects stay as they are,
// tracking annotation included.
func (a *app) remove(ctx context.Context) time.Time {
	a.storeMu.Lock()
	b, inv := a.persisted, slices.Clone(a.inventory)
	a.storeMu.Unlock()
	if b.GetSyncPolicy().GetPrune() {
		err := a.deleteOwned(ctx, inv, apply.ParseSyncOptions(b.GetSyncPolicy().GetSyncOptions()).PrunePropagation)
		if err == nil {
			err = a.deleteAllHooks(ctx, b)
		}
		if err != nil {
			a.lastErr = err.Error()
			a.publish()
			if a.retry == nil {
				a.retry = newRetry(b.GetSyncPolicy().GetRetry())
			}
			d := a.retry.NextBackOff()
			if d < 0 {
				d = maxRetryInterval
			}
			a.log.Warn("deleting app objects failed", "error", err, "retry_in", d)
			return a.e.clock.Now().Add(d)
		}
	}
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	a.mu.Lock()
	revived := !a.removed || a.pending != nil
	a.mu.Unlock()
	if revived {
		return a.e.clock.Now() // Accept brought it back; reconcile again
	}
	if err := a.e.store.Delete(ctx, a.name); err != nil {
		a.log.Warn("deleting app record failed", "error", err)
		return a.e.clock.Now().Add(5 * time.Second)
	}
	final := &apiv1alpha1.AppStatus{App: a.name, Digest: b.GetDigest(), Removed: true, ObservedAt: timestamppb.Now()}
	a.mu.Lock()
	a.gone = true
	a.mu.Unlock()
	a.e.forget(a, final)
	a.done = true
	a.log.Info("app removed", "pruned", b.GetSyncPolicy().GetPrune(), "objects", len(inv))
	return time.Time{}
}

// deleteOwned deletes the inventory objects the app owns, except those with
// Prune=false or Delete=false, with the given propagation.
func (a *app) deleteOwned(ctx context.Context, inv []inventory.Entry, propagation metav1.DeletionPropagation) error {
	var (
		mu    sync.Mutex
		owned []*unstructured.Unstructured
	)
	err := parallel(ctx, a.e.opts.Parallelism, inv, func(ctx context.Context, e inventory.Entry) error {
		live, found, err := a.e.applier.Get(ctx, e.GVK(), e.Namespace, e.Name)
		if err != nil {
			return err
		}
		if oo := apply.ObjectOptionsOf(live); found && apply.OwnedBy(a.name, live) && !oo.NoPrune && !oo.NoDelete {
			mu.Lock()
			owned = append(owned, live)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete objects of app %s: %w", a.name, err)
	}
	for _, group := range byDeleteOrder(owned, manifest.KeyOf, func(o *unstructured.Unstructured) bool { return o.GetNamespace() != "" }) {
		err := parallel(ctx, a.e.opts.Parallelism, group, func(ctx context.Context, o *unstructured.Unstructured) error {
			return a.e.applier.DeleteWith(ctx, o.GroupVersionKind(), o.GetNamespace(), o.GetName(), string(o.GetUID()), propagation)
		})
		if err != nil {
			return fmt.Errorf("delete objects of app %s: %w", a.name, err)
		}
	}
	return nil
}
