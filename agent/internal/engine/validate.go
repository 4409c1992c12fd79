package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// preflight is what the dry-run of a whole bundle found before a sync
// writes anything.
type preflight struct {
	// deferred objects cannot be dry-run before the sync has written
	// something (their CRD or namespace comes with the bundle); they are
	// dry-run with the rest of their step, before the step writes.
	deferred map[manifest.Key]bool
	// nsExists records the namespaces the sync creates (bundle Namespaces,
	// CreateNamespace) that were looked up, and whether they exist.
	nsExists map[string]bool
}

// validate server-side dry-runs every object of the bundle, in parallel,
// before the sync writes anything, so that a bundle the API server refuses
// in part (an object too large, an invalid field, an immutable change, a
// forbidden namespace) is applied not at all. The error names every refused
// object (up to ten).
//
// Objects whose kind a CRD of the bundle defines and which cannot be mapped
// yet, and namespaced objects in a namespace that the sync creates and that
// does not exist yet, are deferred to their step.
//
// An object whose live state still has the fingerprint known to match costs
// no request; for the others the dry-run result is compared with the live
// object, as applyObject would, and the verdict is kept: an object found
// equal records the live fingerprint (and is not written), any other is
// written by its step without another dry-run.
func (a *app) validate(ctx context.Context) (*preflight, error) {
	pf := &preflight{deferred: map[manifest.Key]bool{}, nsExists: map[string]bool{}}
	crdKinds := bundleCRDKinds(a.objs)
	created := a.createdNamespaces()
	for _, k := range a.order {
		if k.Namespace == "" || !created[k.Namespace] {
			continue
		}
		if _, looked := pf.nsExists[k.Namespace]; !looked {
			pf.nsExists[k.Namespace] = a.namespaceExists(ctx, k.Namespace)
		}
		if !pf.nsExists[k.Namespace] {
			pf.deferred[k] = true
		}
	}
	todo := make([]*objState, 0, len(a.order))
	for _, k := range a.order {
		if !pf.deferred[k] {
			todo = append(todo, a.objs[k])
		}
	}
	// Verdicts are written per object by the workers; deferral decisions
	// are collected here, each worker owning its own slot.
	deferred := make([]bool, len(todo))
	idx := make([]int, len(todo))
	for i := range idx {
		idx[i] = i
	}
	err := parallel(ctx, a.e.opts.Parallelism, idx, func(ctx context.Context, i int) error {
		st := todo[i]
		gk := st.key.GroupKind()
		if err := a.mapObject(ctx, st); err != nil {
			if meta.IsNoMatchError(err) && (crdKinds[gk] || a.skipDryRunOnMissing(st)) {
				deferred[i] = true
				return nil
			}
			st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
			return err
		}
		err := a.dryRun(ctx, st)
		if err != nil && apierrors.IsNotFound(err) && (crdKinds[gk] || created[st.key.Namespace]) {
			// The CRD or namespace is there but changes with this
			// bundle, or was deleted meanwhile: try again in the step.
			deferred[i] = true
			st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN, ""
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dry-run of the bundle failed; nothing was applied: %w", err)
	}
	for i, d := range deferred {
		if d {
			pf.deferred[todo[i].key] = true
		}
	}
	return pf, nil
}

// validateStep dry-runs the deferred objects of one step, now that the
// earlier steps have created their CRDs and namespaces. Nothing of the step
// is written when one fails.
//
// One deferred object that does not exist yet (the probe, returned) is not
// dry-run: applyStep writes it first and alone, once every other object of
// the step passed, so its apply is its own dry-run: refused, it fails the
// step with nothing of it written, as its dry-run would have. A new object
// in a new namespace (a new app's) costs an apply only, and a step with
// one object no dry-run at all. When another object is refused, the probe
// is dry-run too, so that the error names every refused object.
func (a *app) validateStep(ctx context.Context, pf *preflight, step apply.Step) (*objState, error) {
	var todo []*objState
	for _, o := range step.Objects {
		if k := manifest.KeyOf(o); pf.deferred[k] {
			todo = append(todo, a.objs[k])
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	check := func(ctx context.Context, st *objState) error {
		if err := a.mapObject(ctx, st); err != nil {
			st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
			return err
		}
		return a.dryRun(ctx, st)
	}
	probe := a.probeOf(ctx, todo)
	if probe != nil {
		todo = slices.DeleteFunc(slices.Clone(todo), func(st *objState) bool { return st == probe })
	}
	err := parallel(ctx, a.e.opts.Parallelism, todo, check)
	if err != nil && probe != nil {
		if perr := check(ctx, probe); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dry-run failed; nothing of this step was applied: %w", err)
	}
	return probe, nil
}

// probeOf picks the probe of a step's deferred objects (see validateStep):
// the first that maps and is not in the watch cache. Should the cache lag
// behind an object that exists, the probe's apply writes over it as its
// step would have; its dry-run would only have spared an unchanged write.
func (a *app) probeOf(ctx context.Context, todo []*objState) *objState {
	for _, st := range todo {
		if a.mapObject(ctx, st) != nil {
			continue // its error shows in the step
		}
		if _, found := a.e.cache.Get(st.gvr, st.key.Namespace, st.key.Name); !found {
			return st
		}
	}
	return nil
}

// dryRun checks one mapped object against the API server. It returns the
// refusal (naming the object) or records the verdict: an object whose live
// state matches desired gets its fingerprint (applyObject skips it), any
// other is left for applyObject to write.
func (a *app) dryRun(ctx context.Context, st *objState) error {
	live, found := a.e.cache.Get(st.gvr, st.key.Namespace, st.key.Name)
	if err := a.ownerConflict(st, live); err != nil {
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
		return err
	}
	var fp string
	if found {
		fp = diff.Fingerprint(live)
		if fp == st.liveFP {
			st.sync, st.message, st.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, "", ""
			return nil
		}
		a.takeOver(ctx, st, live)
		live = a.withManagedFields(ctx, st, live)
	}
	dry, err := a.e.applier.Apply(ctx, st.desired, true)
	if err != nil {
		if apply.IsImmutable(err) && a.mayReplace(st) {
			return nil // the write deletes and re-creates it
		}
		st.sync, st.message = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, err.Error()
		return err
	}
	if found && diff.Compare(st.key, dry, live, a.rules).Equal {
		st.objMemory = matched(st.objMemory, live.GetResourceVersion(), fp, a.e.clock.Now())
	}
	return nil
}

// skipDryRunOnMissing reports whether SkipDryRunOnMissingResource=true (app
// or object) defers the dry-run of an object whose kind is not served yet.
func (a *app) skipDryRunOnMissing(st *objState) bool {
	return a.syncOpts.SkipDryRunOnMissingResource || apply.ObjectOptionsOf(st.desired).SkipDryRunOnMissingResource
}

// mayReplace reports whether Replace=true or Force=true (app or object)
// lets the object be deleted and re-created on an immutable field change.
func (a *app) mayReplace(st *objState) bool {
	oo := apply.ObjectOptionsOf(st.desired)
	return a.syncOpts.Replace || a.syncOpts.Force || oo.Replace || oo.Force
}

// createdNamespaces returns the namespaces this app's sync creates: its
// Namespace objects and, with CreateNamespace=true, the destination.
func (a *app) createdNamespaces() map[string]bool {
	out := map[string]bool{}
	for k := range a.objs {
		if k.Group == "" && k.Kind == "Namespace" {
			out[k.Name] = true
		}
	}
	if a.createsDestination() {
		out[a.bundle.GetNamespace()] = true
	}
	return out
}

// createsDestination reports whether the sync creates the destination
// namespace: CreateNamespace=true, unless the agent is limited to
// namespaces (they exist, as their RBAC does).
func (a *app) createsDestination() bool {
	return a.syncOpts.CreateNamespace && a.bundle.GetNamespace() != "" && a.e.opts.Namespaces == nil
}

var namespaceGVK = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}

// namespaceExists looks a namespace up. When it cannot tell (an agent not
// allowed to read namespaces) it answers true: the dry-runs will tell.
func (a *app) namespaceExists(ctx context.Context, name string) bool {
	if st, ok := a.objs[manifest.Key{Kind: "Namespace", Name: name}]; ok && st.mapped {
		if _, found := a.e.cache.Get(st.gvr, "", name); found {
			return true
		}
	}
	_, found, err := a.e.applier.Get(ctx, namespaceGVK, "", name)
	return found || err != nil
}

// bundleCRDKinds returns the kinds the CRDs among objs define.
func bundleCRDKinds(objs map[manifest.Key]*objState) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for k, st := range objs {
		if !apply.IsCRD(k.GroupKind()) {
			continue
		}
		g, _, _ := unstructured.NestedString(st.desired.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(st.desired.Object, "spec", "names", "kind")
		out[schema.GroupKind{Group: g, Kind: kind}] = true
	}
	return out
}
