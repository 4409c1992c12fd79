package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/project"
	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
)

// rolloutEntry is one app's rollout as the controller keeps it: the state
// (also in the store), the plan it last ran with and its gate's last
// result.
type rolloutEntry struct {
	state  rollout.State
	plan   *rollout.Plan
	gate   *rollout.GateResult
	gating bool // a gate check is running
	wake   time.Time
}

// gateResult is the current step's last gate check: this hub's own, else
// the one the deciding hub stored.
func (e *rolloutEntry) gateResult() *rollout.GateResult {
	if e.gate != nil {
		return e.gate
	}
	if g := e.state.LastGate; g != nil && g.Step == e.state.Step {
		return g
	}
	return nil
}

// Rollout is a copy of an app's rollout for views.
type Rollout struct {
	State rollout.State
	Plan  *rollout.Plan
	// Gate is the current step's last gate check.
	Gate *rollout.GateResult
}

// RolloutOf returns a copy of app's rollout; ok is false when the app has
// no rollout strategy (or has not been reconciled with one yet).
func (c *Controller) RolloutOf(appName string) (Rollout, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.rollouts[appName]
	if !ok || e.plan == nil {
		return Rollout{}, false
	}
	r := Rollout{State: e.state, Plan: e.plan}
	if g := e.gateResult(); g != nil {
		gc := *g
		r.Gate = &gc
	}
	return r, true
}

// Rollouts returns a copy of every app's rollout, in no order.
func (c *Controller) Rollouts() []Rollout {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Rollout, 0, len(c.rollouts))
	for _, e := range c.rollouts {
		if e.plan != nil {
			out = append(out, Rollout{State: e.state, Plan: e.plan})
		}
	}
	return out
}

// RolloutOp is an operation people run on a rollout (rollout.Pause, ...).
type RolloutOp func(s rollout.State, by string, now time.Time) (rollout.State, rollout.Event, error)

// ErrNoRollout is returned by Operate for an app without a rollout.
var ErrNoRollout = fmt.Errorf("no rollout")

// Operate runs op on app's rollout on behalf of by, keeps the result in
// the store, and reconciles. It runs op on the stored state (hubs sharing
// a store: another may have moved the rollout), so it works on any hub;
// the Lease holder acts on it. Errors wrap ErrNoRollout or
// rollout.ErrNotApplicable.
func (c *Controller) Operate(ctx context.Context, appName string, op RolloutOp, by string) (rollout.State, error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	c.mu.Lock()
	e, ok := c.rollouts[appName]
	var base rollout.State
	if ok {
		base = e.state
	}
	c.mu.Unlock()
	if !ok || e.plan == nil {
		return rollout.State{}, fmt.Errorf("application %s: %w (it has no rollout strategy)", appName, ErrNoRollout)
	}
	var (
		s  rollout.State
		ev rollout.Event
	)
	err := c.store.UpdateRollout(ctx, appName, func(cur *store.RolloutRecord) (*store.RolloutRecord, error) {
		from := base
		if cur != nil {
			if err := json.Unmarshal(cur.State, &from); err != nil {
				return nil, fmt.Errorf("stored rollout of %s: %w", appName, err)
			}
		}
		var err error
		if s, ev, err = op(from, by, c.opts.Now()); err != nil {
			return nil, err
		}
		if ev.Step > 0 && ev.Step <= len(e.plan.Steps) {
			ev.StepName = e.plan.Steps[ev.Step-1].Name
		}
		s.Generation, s.Events = from.Generation+1, []rollout.Event{ev}
		return rolloutRecord(s)
	})
	if err != nil {
		c.adopt(ctx, appName) // what the refusal was based on
		return base, err
	}
	c.mu.Lock()
	if s.Generation > e.state.Generation {
		e.state = s
	}
	c.mu.Unlock()
	c.emit(ctx, []rollout.Event{ev})
	c.Trigger()
	return s, nil
}

// adopt reads app's rollout from the store into memory when it is newer.
func (c *Controller) adopt(ctx context.Context, appName string) {
	recs, err := c.store.ListRollouts(ctx)
	if err != nil {
		c.log.Warn("read rollouts", "error", err)
		return
	}
	for _, r := range recs {
		if r.App == appName {
			c.ObserveRollout(r, true) // another replica's write: its events too
		}
	}
}

// ObserveRollout takes a rollout record as the store has it (another hub
// sharing the store wrote it): a newer generation than this hub's
// replaces it, and emits its events (as remote ones) when events is true.
func (c *Controller) ObserveRollout(r store.RolloutRecord, events bool) {
	var s rollout.State
	if err := json.Unmarshal(r.State, &s); err != nil {
		c.log.Warn("stored rollout ignored", "app", r.App, "error", err)
		return
	}
	c.mu.Lock()
	e := c.rollouts[r.App]
	if e != nil && s.Generation <= e.state.Generation {
		c.mu.Unlock()
		return // this hub's own write, or older
	}
	known := e != nil
	if e == nil {
		e = &rolloutEntry{}
		c.rollouts[r.App] = e
	}
	if e.state.To != s.To || e.state.Step != s.Step {
		e.gate = nil
	}
	e.state = s
	c.mu.Unlock()
	if events && known {
		evs := slices.Clone(s.Events)
		for i := range evs {
			evs[i].Remote = true
		}
		c.emit(context.Background(), evs)
	}
	c.Trigger()
}

// ForgetRollout drops app's rollout (another hub removed it from the
// store).
func (c *Controller) ForgetRollout(appName string) {
	c.mu.Lock()
	delete(c.rollouts, appName)
	c.mu.Unlock()
	c.Trigger()
}

// LeadRollouts makes this hub decide rollouts (lead: it holds the Lease
// of the hubs sharing its store; it reads the stored rollouts first) or
// only follow the stored ones. A hub on its own store leads from the
// start (Options.FollowRollouts false).
func (c *Controller) LeadRollouts(ctx context.Context, lead bool) {
	if lead {
		if recs, err := c.store.ListRollouts(ctx); err != nil {
			c.log.Warn("read rollouts on taking the lead", "error", err)
		} else {
			for _, r := range recs {
				c.ObserveRollout(r, false)
			}
		}
	}
	c.follow.Store(!lead)
	c.log.Info("rollouts", "deciding", lead)
	c.Trigger()
}

// loadRollouts reads the rollouts kept in the store (a restarted hub
// resumes them).
func (c *Controller) loadRollouts(ctx context.Context) error {
	recs, err := c.store.ListRollouts(ctx)
	if err != nil {
		return fmt.Errorf("load rollouts: %w", err)
	}
	for _, r := range recs {
		c.ObserveRollout(r, false)
	}
	return nil
}

func rolloutRecord(s rollout.State) (*store.RolloutRecord, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("rollout of %s: %w", s.App, err)
	}
	return &store.RolloutRecord{App: s.App, State: b, UpdatedAt: s.UpdatedAt}, nil
}

// errStale: the stored rollout moved since the state a decision was
// based on (a person's operation on another hub).
var errStale = errors.New("the stored rollout changed meanwhile")

// saveRollout writes next, decided from base, unless the stored state is
// no longer base (errStale; the caller adopts the stored one). It sets
// next's generation and events.
func (c *Controller) saveRollout(ctx context.Context, base rollout.State, next *rollout.State, events []rollout.Event) error {
	next.Generation, next.Events = base.Generation+1, events
	err := c.store.UpdateRollout(ctx, next.App, func(cur *store.RolloutRecord) (*store.RolloutRecord, error) {
		if cur != nil {
			var st struct {
				Generation int64 `json:"generation"`
			}
			if err := json.Unmarshal(cur.State, &st); err != nil {
				return nil, err
			}
			if st.Generation != base.Generation {
				return nil, errStale
			}
		}
		return rolloutRecord(*next)
	})
	if err != nil {
		return fmt.Errorf("rollout of %s: %w", next.App, err)
	}
	return nil
}

func (c *Controller) emit(ctx context.Context, evs []rollout.Event) {
	for _, e := range evs {
		c.log.Info("rollout", "app", e.App, "event", e.Type, "step", e.Step, "message", e.Message)
		if c.opts.OnRolloutEvent != nil {
			c.opts.OnRolloutEvent(ctx, e)
		}
	}
}

// strategyOf returns the rollout strategy of a: its own, else its
// project's; nil when it has none.
func strategyOf(a *app.Application, pol *project.Policy) *app.Rollout {
	if a.Spec.Rollout != nil {
		return a.Spec.Rollout
	}
	if pol != nil {
		return pol.Rollout
	}
	return nil
}

// rolloutFor moves a's rollout for this reconcile: a new revision starts
// one, what the reached clusters' agents reported advances it. It returns
// nil when a has no strategy (every cluster gets the app's revision), and
// a warning when the strategy cannot be used.
func (c *Controller) rolloutFor(ctx context.Context, a *app.Application, pol *project.Policy, rev string, targets []target.Cluster, prev map[pinKey]TargetState, now time.Time) (*rolloutEntry, string) {
	strat := strategyOf(a, pol)
	if strat == nil || a.Spec.Destination.Hub {
		return nil, ""
	}
	if len(a.Spec.AllSources()) > 1 {
		return nil, "spec.rollout: rollouts of apps with several sources are not supported; every cluster gets a new revision at once"
	}
	plan, err := rollout.Compile(strat)
	if err != nil {
		return nil, fmt.Sprintf("spec.rollout: %v; every cluster gets a new revision at once", err)
	}
	c.mu.Lock()
	e := c.rollouts[a.Name]
	if c.follow.Load() {
		// Another hub decides: render by the stored state; a new
		// revision it has not started rolling out yet waits at step 1.
		defer c.mu.Unlock()
		if e == nil {
			return nil, ""
		}
		e.plan = plan
		if s, started := rollout.Next(&e.state, a.Name, rev, now); rev != "" && started && e.state.To != "" {
			return &rolloutEntry{state: s, plan: plan}, ""
		}
		return e, ""
	}
	if e == nil && rev == "" {
		c.mu.Unlock()
		return nil, "" // nothing known yet: nothing to hold
	}
	if e == nil {
		e = &rolloutEntry{}
		c.rollouts[a.Name] = e
	}
	e.plan = plan
	cur := e.state
	gate := e.gateResult()
	c.mu.Unlock()
	if rev == "" {
		return e, "" // the revision is being resolved: hold as we were
	}
	var (
		prevState *rollout.State
		events    []rollout.Event
	)
	if cur.To != "" {
		prevState = &cur
	}
	s, started := rollout.Next(prevState, a.Name, rev, now)
	if started && s.Phase == rollout.Progressing {
		events = append(events, rollout.Event{Type: rollout.EventStarted, App: a.Name, Revision: s.To,
			Message: fmt.Sprintf("rollout of %s started from %s", short(s.To), short(s.From))})
		gate = nil
	}
	tgts := make([]rollout.Target, 0, len(targets))
	for _, cl := range targets {
		tgts = append(tgts, rollout.Target{Name: cl.Name, Labels: cl.Labels})
	}
	slices.SortFunc(tgts, func(x, y rollout.Target) int { return strings.Compare(x.Name, y.Name) })
	in := rollout.Input{Targets: tgts, Observed: c.observe(a.Name, s, prev), Gate: gate, Now: now}
	next, out := rollout.Advance(plan, s, in)
	events = append(events, out.Events...)
	next.LastGate = nil
	if gate != nil && gate.Step == next.Step {
		g := *gate
		next.LastGate = &g
	}
	if started || len(out.Events) > 0 || !next.UpdatedAt.Equal(cur.UpdatedAt) || !sameGate(cur.LastGate, next.LastGate) {
		err := c.saveRollout(ctx, cur, &next, events)
		switch {
		case errors.Is(err, errStale):
			// A person's operation on another hub: take it, decide again.
			c.log.Debug("rollout changed in the store meanwhile: deciding again", "app", a.Name)
			c.adopt(ctx, a.Name)
			c.Trigger()
			return e, ""
		case err != nil:
			// Kept in memory; written again on its next move.
			c.log.Error("save rollout", "app", a.Name, "error", err)
		}
	}
	c.mu.Lock()
	e.state, e.wake = next, out.Wake
	if started {
		e.gate = nil
	}
	startGate := out.CheckGate && !e.gating
	if startGate {
		e.gating = true
	}
	c.mu.Unlock()
	c.emit(ctx, events)
	if startGate {
		go c.checkGate(ctx, a.Name, next.Step, plan.Steps[next.Step].Gate)
	}
	return e, ""
}

// observe reads what the reached clusters' agents report about the
// bundle of s.To: a cluster counts only once the hub renders To for it
// (the previous reconcile's target) and its agent reports that digest.
func (c *Controller) observe(appName string, s rollout.State, prev map[pinKey]TargetState) map[string]rollout.Observed {
	out := map[string]rollout.Observed{}
	for _, cl := range s.Reached {
		pt, ok := prev[pinKey{appName, cl}]
		if !ok || pt.Revision != s.To || pt.Digest == "" || pt.Error != "" {
			continue
		}
		got := c.fleet.StatusOf(cl, appName)
		if got == nil || got.GetDigest() != pt.Digest {
			continue
		}
		h := got.GetHealth().Name()
		out[cl] = rollout.Observed{Updated: got.GetSync().Name() == "Synced" && h == "Healthy", Degraded: h == "Degraded"}
	}
	return out
}

// gateClient makes the gates' HTTP calls.
var gateClient = &http.Client{}

// checkGate runs one gate check and reconciles with its result.
func (c *Controller) checkGate(ctx context.Context, appName string, step int, g *rollout.Gate) {
	ok, detail := rollout.CheckGate(ctx, gateClient, g)
	r := &rollout.GateResult{Step: step, At: c.opts.Now(), OK: ok, Detail: detail}
	c.log.Debug("rollout gate checked", "app", appName, "step", step+1, "ok", ok, "detail", detail)
	c.mu.Lock()
	if e := c.rollouts[appName]; e != nil {
		e.gating = false
		e.gate = r
	}
	c.mu.Unlock()
	c.Trigger()
}

// holdRevision returns the revision cl renders at under e (and why it is
// not the app's revision), "" for the app's own.
func holdRevision(e *rolloutEntry, cl target.Cluster) (rev, waiting string) {
	if e == nil || e.state.Done() || e.state.To == "" {
		return "", ""
	}
	return e.state.RevisionFor(e.plan, rollout.Target{Name: cl.Name, Labels: cl.Labels})
}

// finishRollouts drops the rollouts of apps that are gone or have no
// strategy any more, and schedules the next wake-up of the others.
func (c *Controller) finishRollouts(ctx context.Context, snap *Snapshot, used map[string]bool) {
	known := map[string]bool{}
	for _, as := range snap.Apps {
		known[as.Name] = true
	}
	var wake time.Time
	c.mu.Lock()
	var drop []string
	follow := c.follow.Load()
	for name, e := range c.rollouts {
		switch {
		case follow:
			// The deciding hub removes what is no longer rolled out.
		case used[name]:
			if !e.wake.IsZero() && (wake.IsZero() || e.wake.Before(wake)) {
				wake = e.wake
			}
		case !known[name] || c.snapHasApp(snap, name):
			drop = append(drop, name)
		}
	}
	for _, name := range drop {
		delete(c.rollouts, name)
	}
	if c.rolloutTimer != nil {
		c.rolloutTimer.Stop()
		c.rolloutTimer = nil
	}
	if !wake.IsZero() {
		c.rolloutTimer = time.AfterFunc(max(wake.Sub(c.opts.Now()), 0), c.Trigger)
	}
	c.mu.Unlock()
	for _, name := range drop {
		if err := c.store.DeleteRollout(ctx, name); err != nil {
			c.log.Error("delete rollout", "app", name, "error", err)
		}
	}
}

// snapHasApp reports whether the app is defined and usable in snap (not
// held because its definition broke): an app that is and was not used by
// a rollout this pass has no strategy any more.
func (c *Controller) snapHasApp(snap *Snapshot, name string) bool {
	for _, as := range snap.Apps {
		if as.Name == name {
			return !as.Broken
		}
	}
	return false
}

// rolloutsActive reports whether some rollout is still moving (reports of
// agents may advance it).
func (c *Controller) rolloutsActive() bool {
	if c.follow.Load() {
		return false // the deciding hub reconciles on reports; this one on its writes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.rollouts {
		if e.plan != nil && !e.state.Done() && e.state.Phase != rollout.Halted && e.state.Phase != rollout.Aborted {
			return true
		}
	}
	return false
}

func sameGate(a, b *rollout.GateResult) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Step == b.Step && a.At.Equal(b.At) && a.OK == b.OK && a.Detail == b.Detail
}
