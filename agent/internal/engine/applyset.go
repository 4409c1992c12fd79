package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// replaceTimeout bounds the wait for a replaced object to be gone.
const replaceTimeout = 2 * time.Minute

// ErrOwnedByOtherApp is wrapped when an object of the bundle already
// belongs to another app on this cluster.
var ErrOwnedByOtherApp = errors.New("object is managed by another app")

// applyWave applies the steps of one wave of objects (nil: none).
func (a *app) applyWave(ctx context.Context, pf *preflight, w *apply.Wave) error {
	if w == nil {
		return nil
	}
	for _, step := range w.Steps {
		probe, err := a.validateStep(ctx, pf, step)
		if err != nil {
			return fmt.Errorf("wave %d, %s: %w", w.Wave, step.Phase, err)
		}
		if err := a.applyStep(ctx, step, probe); err != nil {
			return fmt.Errorf("wave %d, %s: %w", w.Wave, step.Phase, err)
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

// applyStep applies the objects of one step in parallel and records what
// it did to each in the operation's change set. The step's probe (see
// validateStep; nil: none) is written first and alone: when the API server
// refuses it, nothing else of the step is written.
func (a *app) applyStep(ctx context.Context, step apply.Step, probe *objState) error {
	states := make([]*objState, 0, len(step.Objects))
	for _, o := range step.Objects {
		if st := a.objs[manifest.KeyOf(o)]; st != probe {
			states = append(states, st)
		}
	}
	if probe != nil {
		act, err := a.applyObject(ctx, probe)
		if err != nil {
			return fmt.Errorf("nothing of this step was applied: %w", err)
		}
		a.changes.Add(probe.key, act)
	}
	return parallel(ctx, a.e.opts.Parallelism, states, func(ctx context.Context, st *objState) error {
		act, err := a.applyObject(ctx, st)
		if err == nil {
			a.changes.Add(st.key, act)
		}
		return err
	})
}

// applyObject makes the live object match st.desired. It relies on the
// dry-run of this sync (validate, validateStep): an object the dry-run found
// equal to its live state carries that state's fingerprint and is skipped
// while the live object keeps it; any other is written, without a second
// dry-run (an apply that changes nothing writes nothing).
func (a *app) applyObject(ctx context.Context, st *objState) (Action, error) {
	if err := a.mapObject(ctx, st); err != nil {
		st.objMemory = st.failed(err)
		return "", err
	}
	live, found := a.e.cache.Get(st.gvr, st.key.Namespace, st.key.Name)
	if err := a.ownerConflict(st, live); err != nil {
		st.objMemory = st.failed(err)
		return "", err
	}
	if !found {
		live = nil
	} else {
		if diff.Fingerprint(live) == st.liveFP {
			st.sync, st.message, st.diff = apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, "", ""
			return Unchanged, nil
		}
		live = a.withManagedFields(ctx, st, live)
	}
	_, act, err := a.write(ctx, st, live)
	return act, err
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
	return fmt.Errorf("%s: %w: %s", st.key, ErrOwnedByOtherApp, other)
}

// write server-side applies st.desired over live (nil when missing),
// keeping the live values of ignored fields, and replaces the object when an
// immutable field changed and Replace=true or Force=true allows it. It
// says what the write did: created, configured (the resourceVersion moved),
// replaced or unchanged.
func (a *app) write(ctx context.Context, st *objState, live *unstructured.Unstructured) (*unstructured.Unstructured, Action, error) {
	a.takeOver(ctx, st, live)
	desired := diff.RespectIgnored(st.key, a.rules, st.desired, live)
	out, err := a.e.applier.Apply(ctx, desired, false)
	replaced := false
	if err != nil && apply.IsImmutable(err) && a.mayReplace(st) {
		a.log.Info("replacing object after immutable field change", "object", st.key.String())
		out, err = a.e.applier.Replace(ctx, desired, replaceTimeout)
		replaced = true
	}
	if err != nil {
		st.objMemory = st.failed(err)
		return nil, "", err
	}
	st.objMemory = written(st.objMemory, out.GetResourceVersion(), diff.Fingerprint(out), a.e.clock.Now())
	return out, writeAction(live, out, replaced), nil
}

// writeAction names what a write that left out did to live (nil: it did not
// exist).
func writeAction(live, out *unstructured.Unstructured, replaced bool) Action {
	switch {
	case replaced:
		return Replaced
	case live == nil:
		return Created
	case out.GetResourceVersion() != live.GetResourceVersion():
		return Configured
	}
	return Unchanged
}

// takeOver gives the agent the fields that other managers (kubectl, Argo
// CD, Helm; see apply.ForeignManagers) hold on live, an object it is about
// to dry-run or write, so that the apply removes what the bundle no longer
// sets and replaces list entries they added. Nothing is read unless the
// watch cache shows such a manager. A failure is logged; the apply that
// follows reports what the API server says.
func (a *app) takeOver(ctx context.Context, st *objState, live *unstructured.Unstructured) {
	if live == nil {
		return
	}
	foreign := a.e.applier.ForeignManagers(live)
	if len(foreign) == 0 {
		return
	}
	done, err := a.e.applier.TakeOver(ctx, st.desired.GroupVersionKind(), st.key.Namespace, st.key.Name)
	switch {
	case err != nil:
		a.log.Warn("taking over fields failed", "object", st.key.String(), "managers", strings.Join(foreign, ","), "error", err)
	case done:
		a.log.Info("took over fields of other managers", "object", st.key.String(), "managers", strings.Join(foreign, ","))
	}
}
