package engine

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ErrHookFailed is wrapped when a hook of a sync operation failed.
var ErrHookFailed = errors.New("hook failed")

// hookRun is one hook started by the running operation.
type hookRun struct {
	spec *hookSpec
	res  *apiv1alpha1.HookResult // in a.lastOp.Hooks
	uid  string
	seen bool // the watch cache has shown the created object
}

// runHookPhase runs the hooks of phase wave by wave; a wave starts once
// every hook of the previous one has succeeded. The first failed hook
// fails the phase.
func (a *app) runHookPhase(ctx context.Context, phase manifest.HookPhase) error {
	for _, w := range phaseWaves(a.hooks, phase) {
		runs, err := a.startHooks(ctx, w)
		if err == nil {
			err = a.waitHooks(ctx, runs)
		}
		a.finishHooks(ctx, runs)
		if err != nil {
			return fmt.Errorf("%s hooks, wave %d: %w", phase, w[0].wave, err)
		}
	}
	return nil
}

// dryRunHooks server-side dry-runs the creation of every hook of the
// bundle before the operation writes anything, so that a hook the API
// server refuses fails the operation with nothing changed, as the dry-run
// of the objects does. A named hook whose earlier instance exists, and a
// hook in a namespace this sync creates, cannot be judged yet and pass.
func (a *app) dryRunHooks(ctx context.Context) error {
	seen := map[manifest.Key]bool{}
	var specs []*hookSpec
	for _, s := range a.hooks {
		if !seen[s.key] {
			seen[s.key] = true
			specs = append(specs, s)
		}
	}
	err := parallel(ctx, a.e.opts.Parallelism, specs, func(ctx context.Context, s *hookSpec) error {
		if err := a.mapHook(ctx, s); err != nil {
			return err
		}
		ri, _, err := a.e.applier.Resource(s.desired.GroupVersionKind(), s.key.Namespace)
		if err != nil {
			return fmt.Errorf("hook %s: %w", s.key, err)
		}
		_, err = ri.Create(ctx, s.desired, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: a.e.opts.FieldManager})
		if err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("dry-run hook %s: %w", s.key, err)
	})
	if err != nil {
		return fmt.Errorf("dry-run of the hooks failed; nothing was applied: %w", err)
	}
	return nil
}

// startHooks creates the hooks of one wave, in parallel, and records them
// as running in the operation.
func (a *app) startHooks(ctx context.Context, specs []*hookSpec) ([]*hookRun, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	runs := make([]*hookRun, len(specs))
	for i, s := range specs {
		res := &apiv1alpha1.HookResult{
			Phase: string(s.phase), Group: s.key.Group, Kind: s.key.Kind, Namespace: s.key.Namespace,
			Name: s.desired.GetName(), Hook: s.key.Name, Wave: int32(s.wave),
			Status: apiv1alpha1.HookResult_STATUS_RUNNING, StartedAt: timestamppb.Now(),
		}
		a.lastOp.Hooks = append(a.lastOp.Hooks, res)
		runs[i] = &hookRun{spec: s, res: res}
	}
	err := parallel(ctx, a.e.opts.Parallelism, runs, a.startHook)
	a.publish()
	return runs, err
}

// startHook adopts a running instance of this very run of the hook (same
// bundle digest and phase: the agent restarted while it ran), or else
// deletes the earlier instances when its policy says BeforeHookCreation
// and creates it: with create for a generateName hook, else with
// server-side apply.
func (a *app) startHook(ctx context.Context, r *hookRun) error {
	s := r.spec
	fail := func(err error) error {
		r.res.Status, r.res.Message, r.res.FinishedAt = apiv1alpha1.HookResult_STATUS_FAILED, err.Error(), timestamppb.Now()
		a.e.metrics.hooks.WithLabelValues(r.res.Phase, resultFailed).Inc()
		return err
	}
	if err := a.mapHook(ctx, s); err != nil {
		return fail(err)
	}
	insts, err := a.hookInstances(ctx, s)
	if err != nil {
		return fail(err)
	}
	run := s.desired.GetAnnotations()[hookRunAnnotation]
	for _, o := range insts {
		if status, _ := hookOutcome(&o); o.GetAnnotations()[hookRunAnnotation] == run && o.GetDeletionTimestamp() == nil && status == apiv1alpha1.HookResult_STATUS_RUNNING {
			r.res.Name, r.uid = o.GetName(), string(o.GetUID())
			a.log.Info("hook adopted: still running from before", "phase", string(s.phase), "hook", s.key.String(), "name", o.GetName())
			return nil
		}
	}
	if s.hook.Has(manifest.BeforeHookCreation) {
		if err := a.deleteEarlierHooks(ctx, s, insts); err != nil {
			return fail(err)
		}
	}
	if name := s.desired.GetName(); name != "" {
		// A named hook never takes over another app's object.
		if live, ok := a.e.cache.Get(s.gvr, s.key.Namespace, name); ok {
			if other, _, tracked := manifest.ParseTrackingID(live.GetAnnotations()[manifest.TrackingAnnotation]); tracked && other != a.name && a.e.holds(other) {
				return fail(fmt.Errorf("hook %s: %w: %s", s.key, ErrOwnedByOtherApp, other))
			}
		}
	}
	var out *unstructured.Unstructured
	if s.desired.GetName() == "" {
		ri, _, rerr := a.e.applier.Resource(s.desired.GroupVersionKind(), s.key.Namespace)
		if rerr != nil {
			return fail(fmt.Errorf("create hook %s: %w", s.key, rerr))
		}
		out, err = ri.Create(ctx, s.desired, metav1.CreateOptions{FieldManager: a.e.opts.FieldManager})
		if err != nil {
			err = fmt.Errorf("create hook %s: %w", s.key, err)
		}
	} else {
		out, err = a.e.applier.Apply(ctx, s.desired, false)
	}
	if err != nil {
		return fail(err)
	}
	r.res.Name, r.uid = out.GetName(), string(out.GetUID())
	a.log.Info("hook started", "phase", string(s.phase), "hook", s.key.String(), "name", out.GetName())
	return nil
}

// mapHook resolves the hook's resource, checks that the agent may manage
// it and watches its kind.
func (a *app) mapHook(ctx context.Context, s *hookSpec) error {
	if !s.mapped {
		mp, err := a.e.applier.Mapper().Mapping(s.desired.GroupVersionKind())
		if err != nil {
			return fmt.Errorf("hook %s: %w", s.key, err)
		}
		s.gvr, s.namespaced, s.mapped = mp.Resource, mp.Scope.Name() == meta.RESTScopeNameNamespace, true
	}
	if err := a.e.permitted(s.key, s.namespaced); err != nil {
		return err
	}
	if err := a.e.cache.Ensure(ctx, s.gvr, s.namespaced); err != nil {
		return fmt.Errorf("hook %s: %w", s.key, err)
	}
	return nil
}

// deleteEarlierHooks deletes the earlier instances of the hook and waits
// until they are gone.
func (a *app) deleteEarlierHooks(ctx context.Context, s *hookSpec, insts []unstructured.Unstructured) error {
	gone, err := a.deleteHookInstances(ctx, s, insts)
	if err != nil {
		return err
	}
	for len(gone) > 0 {
		changed := a.e.cache.Changed()
		for name, uid := range gone {
			if live, ok := a.e.cache.Get(s.gvr, s.key.Namespace, name); !ok || string(live.GetUID()) != uid {
				delete(gone, name)
			}
		}
		if len(gone) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hook %s: wait for earlier instance to be deleted: %w", s.key, ctx.Err())
		case <-changed:
		}
	}
	return nil
}

// hookInstances lists the live instances of the hook s: the objects with
// its label and identity annotation and, for a named hook, the object of
// that name the app applied as an ordinary object before it became a hook
// (it carries the app's tracking id).
func (a *app) hookInstances(ctx context.Context, s *hookSpec) ([]unstructured.Unstructured, error) {
	ri, _, err := a.e.applier.Resource(s.desired.GroupVersionKind(), s.key.Namespace)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil // the kind is not served: no instance exists
		}
		return nil, fmt.Errorf("hook %s: %w", s.key, err)
	}
	list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: hookLabel + "=" + s.desired.GetLabels()[hookLabel]})
	if err != nil {
		return nil, fmt.Errorf("hook %s: list instances: %w", s.key, err)
	}
	id := s.desired.GetAnnotations()[hookOfAnnotation]
	var out []unstructured.Unstructured
	for _, o := range list.Items {
		if o.GetAnnotations()[hookOfAnnotation] == id { // else a hash collision, however unlikely
			out = append(out, o)
		}
	}
	if name := s.desired.GetName(); name != "" {
		live, err := ri.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil && live.GetAnnotations()[manifest.TrackingAnnotation] == manifest.TrackingID(a.name, s.key):
			out = append(out, *live)
		case err != nil && !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("hook %s: read: %w", s.key, err)
		}
	}
	return out, nil
}

// deleteHookInstances deletes the given instances of the hook s and
// returns them, name → uid.
func (a *app) deleteHookInstances(ctx context.Context, s *hookSpec, insts []unstructured.Unstructured) (map[string]string, error) {
	gone := map[string]string{}
	for _, old := range insts {
		if err := a.e.applier.Delete(ctx, old.GroupVersionKind(), old.GetNamespace(), old.GetName(), string(old.GetUID())); err != nil {
			return nil, fmt.Errorf("hook %s: delete instance: %w", s.key, err)
		}
		gone[old.GetName()] = string(old.GetUID())
		a.log.Debug("deleted hook instance", "hook", s.key.String(), "name", old.GetName())
	}
	return gone, nil
}

// deleteAllHooks deletes the live instances of every hook of b, for an app
// removed with prune. A bundle that cannot be planned any more (a kind no
// longer served) has no instances to find.
func (a *app) deleteAllHooks(ctx context.Context, b *apiv1alpha1.Bundle) error {
	_, _, hooks, err := a.plan(b)
	if err != nil {
		a.log.Warn("cannot plan the hooks of a removed app; their instances are left", "error", err)
		return nil
	}
	done := map[manifest.Key]bool{}
	for _, s := range hooks {
		if done[s.key] {
			continue
		}
		done[s.key] = true
		insts, err := a.hookInstances(ctx, s)
		if err == nil {
			_, err = a.deleteHookInstances(ctx, s, insts)
		}
		if err != nil {
			return fmt.Errorf("delete hooks of app %s: %w", a.name, err)
		}
	}
	return nil
}

// waitHooks waits until every run hook has finished, and fails on the
// first that failed (or was deleted while it ran).
func (a *app) waitHooks(ctx context.Context, runs []*hookRun) error {
	for {
		changed := a.e.cache.Changed()
		var waiting []string
		for _, r := range runs {
			if r.res.Status != apiv1alpha1.HookResult_STATUS_RUNNING {
				continue
			}
			live, ok := a.e.cache.Get(r.spec.gvr, r.spec.key.Namespace, r.res.Name)
			if !ok || string(live.GetUID()) != r.uid {
				if r.seen {
					a.e.metrics.hooks.WithLabelValues(r.res.Phase, resultFailed).Inc()
					r.res.Status, r.res.Message = apiv1alpha1.HookResult_STATUS_FAILED, "deleted while it ran"
					r.res.FinishedAt = timestamppb.Now()
					return fmt.Errorf("%w: %s %s was deleted while it ran", ErrHookFailed, r.spec.key.Kind, r.res.Name)
				}
				waiting = append(waiting, r.res.Name)
				continue
			}
			r.seen = true
			status, msg := hookOutcome(live)
			r.res.Message = msg
			if status == apiv1alpha1.HookResult_STATUS_RUNNING {
				waiting = append(waiting, r.res.Name)
				continue
			}
			r.res.Status, r.res.FinishedAt = status, timestamppb.Now()
			result := resultSucceeded
			if status == apiv1alpha1.HookResult_STATUS_FAILED {
				result = resultFailed
			}
			a.e.metrics.hooks.WithLabelValues(r.res.Phase, result).Inc()
			a.log.Info("hook finished", "phase", r.res.Phase, "hook", r.spec.key.String(), "name", r.res.Name, "status", status.String())
			if status == apiv1alpha1.HookResult_STATUS_FAILED {
				return fmt.Errorf("%w: %s %s/%s: %s", ErrHookFailed, r.spec.key.Kind, r.spec.key.Namespace, r.res.Name, msg)
			}
		}
		a.publish()
		if len(waiting) == 0 {
			return nil
		}
		a.checkApplied(ctx)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d hooks to complete (first %s): %w", len(waiting), waiting[0], ctx.Err())
		case <-changed:
		}
	}
}

// finishHooks applies the delete policies of finished hooks: HookSucceeded
// deletes a succeeded hook, HookFailed a failed one. A failed delete is
// logged; it does not fail the operation.
func (a *app) finishHooks(ctx context.Context, runs []*hookRun) {
	for _, r := range runs {
		h := r.spec.hook
		del := (r.res.Status == apiv1alpha1.HookResult_STATUS_SUCCEEDED && h.Has(manifest.HookSucceeded)) ||
			(r.res.Status == apiv1alpha1.HookResult_STATUS_FAILED && h.Has(manifest.HookFailed))
		if !del || r.uid == "" {
			continue
		}
		if err := a.e.applier.Delete(ctx, r.spec.desired.GroupVersionKind(), r.spec.key.Namespace, r.res.Name, r.uid); err != nil {
			a.log.Warn("deleting finished hook failed", "hook", r.spec.key.String(), "name", r.res.Name, "error", err)
			continue
		}
		r.res.Deleted = true
	}
	a.publish()
}
