package rollout

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Target is a cluster the app targets.
type Target struct {
	Name   string
	Labels map[string]string
}

func labelsOf(t Target) labels.Set { return labels.Set(t.Labels) }

// Observed is what a reached cluster's agent reports about the app at To.
type Observed struct {
	// Updated: the agent reports the bundle of To, Synced and Healthy.
	Updated bool
	// Degraded: the agent reports the bundle of To, Degraded.
	Degraded bool
}

// GateResult is the last check of a step's gate.
type GateResult struct {
	Step   int       `json:"step"`
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail,omitempty"`
}

// Input is what Advance decides on.
type Input struct {
	// Targets are the app's clusters now, in name order.
	Targets []Target
	// Observed are the reached clusters' reports (missing: not updated).
	Observed map[string]Observed
	// Gate is the last gate result of the current step, if any.
	Gate *GateResult
	Now  time.Time
}

// Event is something people see in the event stream, the metrics and the
// history.
type Event struct {
	Type     string   `json:"type"`
	App      string   `json:"app"`
	Revision string   `json:"revision"`
	Step     int      `json:"step"` // 1-based; 0 for the whole rollout
	StepName string   `json:"stepName,omitempty"`
	Clusters []string `json:"clusters,omitempty"`
	Message  string   `json:"message,omitempty"`
	// Remote: the event was made by another hub sharing the store (seen
	// in its write): shown in the event stream, not counted or recorded
	// again.
	Remote bool `json:"-"`
}

// Event types.
const (
	EventStarted         = "RolloutStarted"
	EventStepStarted     = "StepStarted"
	EventReached         = "ClustersReached"
	EventStepHealthy     = "StepHealthy"
	EventStepDone        = "StepDone"
	EventWaitingApproval = "WaitingApproval"
	EventHalted          = "Halted"
	EventRolledBack      = "RolledBack"
	EventCompleted       = "Completed"
	EventPaused          = "Paused"
	EventResumed         = "Resumed"
	EventApproved        = "Approved"
	EventAborted         = "Aborted"
	EventRetried         = "Retried"
)

// Output is what Advance asks of its caller besides the new state.
type Output struct {
	Events []Event
	// Wake is when Advance should run again even if nothing is reported
	// (a soak ends, a deadline passes, a gate check is due); zero: only
	// on a report.
	Wake time.Time
	// CheckGate asks for a check of the current step's gate now.
	CheckGate bool
}

// Advance moves s as far as in allows: halts on a Degraded reached
// cluster or a missed deadline, starts steps, reaches clusters up to
// maxUnavailable, soaks, checks the gate, and completes. It returns the
// new state (s is not changed) and what the caller should do.
func Advance(p *Plan, s State, in Input) (State, Output) {
	s = s.clone()
	a := &advancer{p: p, s: &s, in: in}
	a.run()
	if a.changed {
		s.UpdatedAt = in.Now
	}
	return s, a.out
}

type advancer struct {
	p       *Plan
	s       *State
	in      Input
	out     Output
	changed bool
}

func (a *advancer) event(typ string, step int, clusters []string, format string, args ...any) {
	e := Event{Type: typ, App: a.s.App, Revision: a.s.To, Step: step, Clusters: clusters, Message: fmt.Sprintf(format, args...)}
	if step > 0 {
		e.StepName = stepName(a.p, step-1)
	}
	a.out.Events = append(a.out.Events, e)
	a.changed = true
}

func (a *advancer) wake(t time.Time) {
	if a.out.Wake.IsZero() || t.Before(a.out.Wake) {
		a.out.Wake = t
	}
}

func (a *advancer) run() {
	s := a.s
	if s.Phase == Completed || s.Phase == Halted || s.Phase == Aborted {
		return
	}
	for _, c := range s.Reached {
		if a.in.Observed[c].Degraded && a.targeted(c) {
			a.halt(fmt.Sprintf("cluster %s is Degraded at %s", c, short(s.To)))
			return
		}
	}
	for !a.stepOnce() {
	}
}

func (a *advancer) targeted(c string) bool {
	_, ok := slices.BinarySearchFunc(a.in.Targets, c, func(t Target, n string) int { return strings.Compare(t.Name, n) })
	return ok
}

// stepOnce works on the current step; it returns true when Advance must
// stop (waiting or final), false to go on with the next step.
func (a *advancer) stepOnce() bool {
	s, now := a.s, a.in.Now
	if s.Step >= len(a.p.Steps) {
		s.Phase, s.Reason = Completed, ""
		a.event(EventCompleted, 0, nil, "rollout of %s completed", short(s.To))
		return true
	}
	st := a.p.Steps[s.Step]
	n := s.Step + 1
	if len(s.Steps) <= s.Step {
		if s.Paused {
			return true // a paused rollout starts no step
		}
		if st.Approval && !slices.Contains(s.Approved, s.Step) {
			if s.Phase != WaitingApproval {
				s.Phase, s.Reason = WaitingApproval, fmt.Sprintf("step %d (%s) waits for approval", n, st.Name)
				a.event(EventWaitingApproval, n, nil, "%s", s.Reason)
			}
			return true
		}
		s.Phase, s.Reason = Progressing, ""
		clusters := st.takes(a.remaining())
		if len(clusters) == 0 && st.Implicit {
			s.Step++ // every cluster was taken by a listed step
			return false
		}
		s.Steps = append(s.Steps, StepState{Name: st.Name, Clusters: clusters, StartedAt: now})
		a.event(EventStepStarted, n, clusters, "step %d (%s) started with %d clusters", n, st.Name, len(clusters))
	}
	ss := &s.Steps[s.Step]
	var members []string
	for _, c := range ss.Clusters {
		if a.targeted(c) {
			members = append(members, c)
		}
	}
	if len(members) == 0 {
		ss.DoneAt = now // nothing to wait for, nothing to soak
		a.event(EventStepDone, n, nil, "step %d (%s) done: no cluster", n, st.Name)
		s.Step++
		return false
	}
	inFlight, updated := 0, 0
	for _, c := range members {
		switch {
		case !s.IsReached(c):
		case a.in.Observed[c].Updated:
			updated++
		default:
			inFlight++
		}
	}
	var reached []string
	for _, c := range members {
		if s.Paused || inFlight >= st.maxUnavailable(len(members)) {
			break
		}
		if !s.IsReached(c) {
			reached = append(reached, c)
			inFlight++
		}
	}
	if len(reached) > 0 {
		s.Reached = append(s.Reached, reached...)
		sort.Strings(s.Reached)
		a.event(EventReached, n, reached, "step %d (%s): %s given %s", n, st.Name, strings.Join(reached, ", "), short(s.To))
	}
	if updated < len(members) {
		if !ss.HealthyAt.IsZero() {
			ss.HealthyAt = time.Time{} // a cluster fell back: the soak starts again
			a.changed = true
		}
		deadline := ss.StartedAt.Add(st.Deadline)
		if s.Paused {
			return true // the time paused does not count (Resume moves the deadline)
		}
		if !now.Before(deadline) {
			a.halt(fmt.Sprintf("step %d (%s): %s not Synced and Healthy within %s", n, st.Name, strings.Join(a.notUpdated(members), ", "), st.Deadline))
			return true
		}
		a.wake(deadline)
		return true
	}
	if ss.HealthyAt.IsZero() {
		ss.HealthyAt = now
		a.event(EventStepHealthy, n, members, "step %d (%s): every cluster Synced and Healthy; soaking %s", n, st.Name, st.Soak)
	}
	soakEnd := ss.HealthyAt.Add(st.Soak)
	if g := st.Gate; g != nil {
		r := a.in.Gate
		if r != nil && (r.Step != s.Step || r.At.Before(ss.HealthyAt)) {
			r = nil // another step's, or from before this soak
		}
		if r != nil && !r.OK {
			a.halt(fmt.Sprintf("step %d (%s): gate failed: %s", n, st.Name, r.Detail))
			return true
		}
		switch {
		case r == nil || (!now.Before(soakEnd) && r.At.Before(soakEnd)):
			a.out.CheckGate = true
			a.wake(now.Add(g.Interval)) // a check that never answers is retried
			return true
		case now.Before(soakEnd):
			a.wake(r.At.Add(g.Interval))
		}
	}
	if now.Before(soakEnd) {
		a.wake(soakEnd)
		return true
	}
	if s.Paused {
		return true // soaked: the next step waits for Resume
	}
	ss.DoneAt = now
	a.event(EventStepDone, n, members, "step %d (%s) done", n, st.Name)
	s.Step++
	return false
}

// remaining are the targets no started step took, in name order (every
// reached cluster was taken by a step).
func (a *advancer) remaining() []Target {
	taken := map[string]bool{}
	for _, ss := range a.s.Steps {
		for _, c := range ss.Clusters {
			taken[c] = true
		}
	}
	var out []Target
	for _, t := range a.in.Targets {
		if !taken[t.Name] {
			out = append(out, t)
		}
	}
	return out
}

func (a *advancer) notUpdated(members []string) []string {
	var out []string
	for _, c := range members {
		if !a.s.IsReached(c) || !a.in.Observed[c].Updated {
			out = append(out, c)
		}
	}
	return out
}

// halt stops the rollout; with autoRollback the reached clusters go back
// to From.
func (a *advancer) halt(reason string) {
	s := a.s
	s.Phase, s.Reason = Halted, reason
	var step []string
	if s.Step < len(s.Steps) {
		step = s.Steps[s.Step].Clusters
	}
	a.event(EventHalted, s.Step+1, step, "rollout of %s halted: %s", short(s.To), reason)
	if a.p.AutoRollback && len(s.Reached) > 0 {
		back := s.Reached
		s.Reached, s.RolledBack = nil, true
		a.event(EventRolledBack, s.Step+1, back, "%s returned to %s", strings.Join(back, ", "), short(s.From))
	}
}
