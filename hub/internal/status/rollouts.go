package status

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// Rollout is the view of app's rollout; a NotFound *Error when the app
// does not exist or has no rollout strategy.
func (s *Service) Rollout(name string) (api.RolloutView, error) {
	var as *controller.AppState
	snap := s.d.Controller.Snapshot()
	for i := range snap.Apps {
		if snap.Apps[i].Name == name {
			as = &snap.Apps[i]
		}
	}
	if as == nil {
		return api.RolloutView{}, errorf(NotFound, "application %q not found", name)
	}
	ro, ok := s.d.Controller.RolloutOf(name)
	if !ok {
		return api.RolloutView{}, errorf(NotFound, "application %q has no rollout strategy (spec.rollout, or its project's)", name)
	}
	return s.rolloutView(as, snap.Clusters, ro), nil
}

func (s *Service) rolloutView(as *controller.AppState, clusters []controller.ClusterState, ro controller.Rollout) api.RolloutView {
	st, p := ro.State, ro.Plan
	v := api.RolloutView{App: st.App, From: st.From, To: st.To, Phase: string(st.Phase), Paused: st.Paused, Reason: st.Reason,
		CurrentStep: st.Step + 1, RolledBack: st.RolledBack, AutoRollback: p.AutoRollback, StartedAt: st.StartedAt, UpdatedAt: st.UpdatedAt,
		Steps: []api.RolloutStepView{}}
	if g := ro.Gate; g != nil {
		v.Gate = &api.RolloutGateView{Step: g.Step + 1, At: g.At, OK: g.OK, Detail: g.Detail}
	}
	labels := map[string]map[string]string{}
	for _, c := range clusters {
		labels[c.Name] = c.Labels
	}
	targets := map[string]controller.TargetState{}
	for _, t := range as.Targets {
		targets[t.Cluster] = t
	}
	// The clusters each step took, or is expected to take.
	byStep := make([][]string, len(p.Steps))
	for _, t := range as.Targets {
		i := st.StepOf(p, rollout.Target{Name: t.Cluster, Labels: labels[t.Cluster]})
		if i >= 0 && i < len(byStep) {
			byStep[i] = append(byStep[i], t.Cluster)
		}
	}
	for i, ps := range p.Steps {
		sv := api.RolloutStepView{Number: i + 1, Name: ps.Name, Percent: ps.Percent, Approval: ps.Approval, Implicit: ps.Implicit,
			Deadline: ps.Deadline.String(), State: stepState(st, i)}
		if ps.Selector != nil {
			sv.Selector = ps.Selector.String()
		}
		if ps.Soak > 0 {
			sv.Soak = ps.Soak.String()
		}
		if ps.Gate != nil {
			sv.Gate = ps.Gate.URL
		}
		names := byStep[i]
		if i < len(st.Steps) {
			ss := st.Steps[i]
			names = ss.Clusters
			sv.StartedAt, sv.HealthyAt, sv.DoneAt = ss.StartedAt, ss.HealthyAt, ss.DoneAt
		}
		if ps.Implicit && len(names) == 0 {
			continue // every cluster was taken by a listed step
		}
		sv.Clusters = []api.RolloutClusterView{}
		for _, c := range names {
			t, ok := targets[c]
			if !ok {
				continue
			}
			cv := api.RolloutClusterView{Cluster: c, Reached: st.Done() || st.IsReached(c), Revision: t.Revision}
			cv.Sync, cv.Health = ClusterSync(t, s.d.Fleet.StatusOf(c, as.Name))
			sv.Clusters = append(sv.Clusters, cv)
		}
		v.Steps = append(v.Steps, sv)
	}
	return v
}

// stepState is Pending, WaitingApproval, Progressing, Soaking, Done or
// Halted (Aborted for the step an abort stopped).
func stepState(st rollout.State, i int) string {
	switch {
	case i < len(st.Steps) && !st.Steps[i].DoneAt.IsZero(), st.Done():
		return "Done"
	case i != st.Step:
		return "Pending"
	case st.Phase == rollout.Halted:
		return "Halted"
	case st.Phase == rollout.Aborted:
		return "Aborted"
	case st.Phase == rollout.WaitingApproval:
		return "WaitingApproval"
	case i >= len(st.Steps):
		return "Pending"
	case !st.Steps[i].HealthyAt.IsZero():
		return "Soaking"
	}
	return "Progressing"
}

// RolloutActions are the operations people run on a rollout.
var RolloutActions = map[string]controller.RolloutOp{
	"pause": rollout.Pause, "resume": rollout.Resume, "approve": rollout.Approve, "abort": rollout.Abort, "retry": rollout.Retry,
}

// RolloutAction runs action (a key of RolloutActions) on app's rollout on
// behalf of by and returns the rollout's view. Errors: Invalid for an
// unknown action, NotFound without a rollout, Conflict when the rollout's
// phase does not allow it.
func (s *Service) RolloutAction(ctx context.Context, name, action, by string) (api.RolloutView, error) {
	op, ok := RolloutActions[action]
	if !ok {
		return api.RolloutView{}, errorf(Invalid, "rollout action %q: want pause, resume, approve, abort or retry", action)
	}
	if _, err := s.Rollout(name); err != nil {
		return api.RolloutView{}, err
	}
	_, err := s.d.Controller.Operate(ctx, name, op, by)
	switch {
	case errors.Is(err, controller.ErrNoRollout):
		return api.RolloutView{}, errorf(NotFound, "%v", err)
	case errors.Is(err, rollout.ErrNotApplicable):
		return api.RolloutView{}, errorf(Conflict, "%v", err)
	case err != nil:
		return api.RolloutView{}, fmt.Errorf("rollout %s of %s: %w", action, name, err)
	}
	return s.Rollout(name)
}

// RolloutEvent records a rollout event (wire it to
// controller.Options.OnRolloutEvent): history entries for the clusters of
// a step that is done, halted or rolled back (written off the caller's
// path, under ctx without its cancellation), and the event to every
// subscriber.
func (s *Service) RolloutEvent(ctx context.Context, e rollout.Event) {
	now := time.Now()
	ae := api.RolloutEvent{Type: e.Type, App: e.App, Revision: e.Revision, Step: e.Step, StepName: e.StepName, Clusters: e.Clusters, Message: e.Message, Time: now}
	s.feed.publish(ae)
	if e.Remote {
		return // the replica that made it records it
	}
	result := ""
	switch e.Type {
	case rollout.EventStepDone:
		result = store.ResultSucceeded
	case rollout.EventHalted, rollout.EventRolledBack, rollout.EventAborted:
		result = store.ResultFailed
	}
	if result == "" || len(e.Clusters) == 0 {
		return
	}
	s.history.Add(1)
	go func() {
		defer s.history.Done()
		for _, c := range e.Clusters {
			he := store.HistoryEntry{App: e.App, Cluster: c, Revision: e.Revision, StartedAt: now, FinishedAt: now,
				InitiatedBy: "rollout", Result: result, Message: "rollout: " + e.Message}
			if _, err := s.d.Store.AppendHistory(context.WithoutCancel(ctx), he); err != nil {
				s.d.Log.Warn("append rollout history", "app", e.App, "cluster", c, "error", err)
			}
		}
	}()
}

// SubscribeRollouts returns a channel of rollout events and a cancel
// function. A subscriber that does not keep up loses events (the event
// stream's change events still tell it to re-read).
func (s *Service) SubscribeRollouts() (<-chan api.RolloutEvent, func()) {
	return s.feed.subscribe()
}

// feed fans rollout events out to subscribers.
type feed struct {
	mu   sync.Mutex
	subs map[chan api.RolloutEvent]struct{}
}

func (f *feed) subscribe() (<-chan api.RolloutEvent, func()) {
	ch := make(chan api.RolloutEvent, 64)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan api.RolloutEvent]struct{}{}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

func (f *feed) publish(e api.RolloutEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- e:
		default:
		}
	}
}
