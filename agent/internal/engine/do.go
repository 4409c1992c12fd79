package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Do runs a hub command and returns its result: SYNC applies the held
// bundle now (also without automated sync; prune when the command or the
// policy asks), REFRESH re-reads the live state of every object and
// recomputes the status, DIFF returns the diff of desired against live.
func (e *Engine) Do(ctx context.Context, cmd *apiv1alpha1.Command) *apiv1alpha1.CommandResult {
	res := &apiv1alpha1.CommandResult{Id: cmd.GetId(), App: cmd.GetApp()}
	e.mu.Lock()
	a := e.apps[cmd.GetApp()]
	e.mu.Unlock()
	if a == nil {
		res.Message = fmt.Sprintf("app %s is not held by this agent", cmd.GetApp())
		return res
	}
	switch cmd.GetType() {
	case apiv1alpha1.Command_TYPE_SYNC:
		by := cmd.GetInitiatedBy()
		if by == "" {
			by = "hub"
		}
		r := &syncRequest{initiatedBy: by, prune: cmd.GetPrune(), done: make(chan error, 1)}
		a.mu.Lock()
		a.syncReqs = append(a.syncReqs, r)
		a.mu.Unlock()
		a.poke()
		select {
		case err := <-r.done:
			if err != nil {
				res.Message = err.Error()
				return res
			}
			res.Ok, res.Message = true, "synced"
		case <-ctx.Done():
			res.Message = fmt.Sprintf("sync of app %s: %v", a.name, ctx.Err())
		}
	case apiv1alpha1.Command_TYPE_REFRESH:
		e.kickOrphans()
		done := make(chan struct{})
		a.mu.Lock()
		a.refreshReqs = append(a.refreshReqs, done)
		a.mu.Unlock()
		a.poke()
		select {
		case <-done:
			res.Ok, res.Message = true, "refreshed"
		case <-ctx.Done():
			res.Message = fmt.Sprintf("refresh of app %s: %v", a.name, ctx.Err())
		}
	case apiv1alpha1.Command_TYPE_DIFF:
		d, n, err := e.diffApp(ctx, a)
		if err != nil {
			res.Message = err.Error()
			return res
		}
		res.Ok, res.Diff = true, d
		res.Message = fmt.Sprintf("%d objects differ", n)
	default:
		res.Message = fmt.Sprintf("unknown command type %v", cmd.GetType())
	}
	return res
}

// diffApp diffs every desired object of a against the cluster, reading the
// API server directly (not the watch cache) and dry-running each apply.
func (e *Engine) diffApp(ctx context.Context, a *app) (string, int, error) {
	a.mu.Lock()
	snap, rules := a.snapshot, a.snapRules
	a.mu.Unlock()
	if snap == nil {
		return "", 0, fmt.Errorf("app %s has no loaded bundle", a.name)
	}
	diffs := make([]string, len(snap))
	var mu sync.Mutex
	var firstErr error
	idx := make([]int, len(snap))
	for i := range idx {
		idx[i] = i
	}
	_ = parallel(ctx, e.opts.Parallelism, idx, func(ctx context.Context, i int) error {
		o := snap[i]
		live, found, err := e.applier.Get(ctx, o.desired.GroupVersionKind(), o.key.Namespace, o.key.Name)
		if err == nil && !found {
			diffs[i] = diff.Unified(o.key.String(), nil, diff.Normalize(o.desired))
			return nil
		}
		if err == nil && live.GetAnnotations()[manifest.TrackingAnnotation] != manifest.TrackingID(a.name, o.key) {
			// Not this app's object (yet): its content is not the app's to show.
			diffs[i] = fmt.Sprintf("--- live %s\n+++ desired %s\n exists, not managed by this app\n", o.key, o.key)
			return nil
		}
		var dry = o.desired
		if err == nil {
			dry, err = e.applier.Apply(ctx, o.desired, true)
		}
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			return nil
		}
		if r := diff.Compare(o.key, dry, live, rules); !r.Equal {
			diffs[i] = r.Diff
		}
		return nil
	})
	if firstErr != nil {
		return "", 0, fmt.Errorf("diff app %s: %w", a.name, firstErr)
	}
	var b strings.Builder
	n := 0
	for _, d := range diffs {
		if d != "" {
			n++
			b.WriteString(d)
		}
	}
	return b.String(), n, nil
}
