package rollout

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotApplicable is wrapped by the errors of an operation the rollout's
// phase does not allow (approve when nothing waits, resume when not
// paused, ...).
var ErrNotApplicable = errors.New("not applicable")

func notApplicable(s *State, op string) error {
	what := string(s.Phase)
	if s.Paused {
		what += ", paused"
	}
	return fmt.Errorf("rollout of %s to %s is %s: cannot %s: %w", s.App, short(s.To), what, op, ErrNotApplicable)
}

func active(s *State) bool { return s.Phase == Progressing || s.Phase == WaitingApproval }

// Pause stops s from reaching more clusters and from starting the next
// step until Resume; health halts still apply, the current step's soak
// runs on, its deadline waits.
func Pause(s State, by string, now time.Time) (State, Event, error) {
	if !active(&s) || s.Paused {
		return s, Event{}, notApplicable(&s, "pause")
	}
	s = s.clone()
	s.Paused, s.PausedAt, s.UpdatedAt = true, now, now
	return s, opEvent(&s, EventPaused, "paused by %s", by), nil
}

// Resume undoes Pause. The time paused does not count against the current
// step's deadline; its soak runs on while paused.
func Resume(s State, by string, now time.Time) (State, Event, error) {
	if !s.Paused {
		return s, Event{}, notApplicable(&s, "resume")
	}
	s = s.clone()
	if s.Step < len(s.Steps) {
		ss := &s.Steps[s.Step]
		ss.StartedAt = ss.StartedAt.Add(now.Sub(s.PausedAt))
	}
	s.Paused, s.PausedAt, s.UpdatedAt = false, time.Time{}, now
	return s, opEvent(&s, EventResumed, "resumed by %s", by), nil
}

// Approve lets the step waiting for approval start.
func Approve(s State, by string, now time.Time) (State, Event, error) {
	if s.Phase != WaitingApproval {
		return s, Event{}, notApplicable(&s, "approve")
	}
	s = s.clone()
	s.Approved = append(s.Approved, s.Step)
	s.Phase, s.Reason, s.UpdatedAt = Progressing, "", now
	return s, opEvent(&s, EventApproved, "step %d approved by %s", s.Step+1, by), nil
}

// Abort stops the rollout and returns the reached clusters to From.
func Abort(s State, by string, now time.Time) (State, Event, error) {
	if s.Phase == Completed || s.Phase == Aborted {
		return s, Event{}, notApplicable(&s, "abort")
	}
	s = s.clone()
	back := s.Reached
	s.Phase, s.Reason = Aborted, "aborted by "+by
	s.Reached, s.RolledBack = nil, s.RolledBack || len(back) > 0
	s.Paused, s.PausedAt, s.UpdatedAt = false, time.Time{}, now
	e := opEvent(&s, EventAborted, "aborted by %s", by)
	e.Clusters = back
	return s, e, nil
}

// Retry starts a halted or aborted rollout again: from its first step if
// its clusters were returned to From, else at the step it halted at (that
// step's clusters are taken again and its deadline starts again).
func Retry(s State, by string, now time.Time) (State, Event, error) {
	if s.Phase != Halted && s.Phase != Aborted {
		return s, Event{}, notApplicable(&s, "retry")
	}
	s = s.clone()
	if s.RolledBack || len(s.Reached) == 0 {
		s.Steps, s.Step, s.Reached, s.Approved, s.RolledBack = nil, 0, nil, nil, false
	} else if s.Step < len(s.Steps) {
		s.Steps = s.Steps[:s.Step]
	}
	s.Phase, s.Reason, s.UpdatedAt = Progressing, "", now
	return s, opEvent(&s, EventRetried, "retried by %s", by), nil
}

func opEvent(s *State, typ, format string, args ...any) Event {
	return Event{Type: typ, App: s.App, Revision: s.To, Step: s.Step + 1, Message: fmt.Sprintf(format, args...)}
}
