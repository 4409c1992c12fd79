package rollout

import (
	"fmt"
	"slices"
	"time"
)

// Phase is where a rollout is.
type Phase string

// The phases. Completed, Halted and Aborted are final until a new
// revision or a retry.
const (
	Progressing     Phase = "Progressing"
	WaitingApproval Phase = "WaitingApproval"
	Halted          Phase = "Halted"
	Aborted         Phase = "Aborted"
	Completed       Phase = "Completed"
)

// State is one app's rollout: the revision its clusters move from and to,
// the step it is at and the clusters it reached. It is what the store
// keeps (as JSON), so that a restarted hub resumes where it was.
type State struct {
	App string `json:"app"`
	// From is the revision the clusters not reached keep (the last
	// completed rollout's); To is the revision being rolled out.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// Phase and Reason: why it stopped or waits (people read it).
	Phase  Phase  `json:"phase"`
	Reason string `json:"reason,omitempty"`
	// Paused by a person: no cluster is reached and no step starts until
	// resumed; halts on health still apply.
	Paused   bool      `json:"paused,omitempty"`
	PausedAt time.Time `json:"pausedAt,omitzero"`
	// Step is the index of the current step (len(plan steps) once done).
	Step int `json:"step"`
	// Steps are the steps started so far, with the clusters each took.
	Steps []StepState `json:"steps,omitempty"`
	// Reached are the clusters given To, sorted.
	Reached []string `json:"reached,omitempty"`
	// Approved are the indexes of the steps a person approved.
	Approved []int `json:"approved,omitempty"`
	// RolledBack: the reached clusters were returned to From (after a
	// halt with autoRollback, or an abort).
	RolledBack bool      `json:"rolledBack,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	UpdatedAt  time.Time `json:"updatedAt,omitzero"`
	// Generation counts the writes of the state to the store: a write
	// based on an older generation than the stored one is refused (hubs
	// sharing a store: the Lease holder decides, any hub runs people's
	// operations).
	Generation int64 `json:"generation,omitempty"`
	// LastGate is the current step's last gate check as the deciding hub
	// saw it (every hub shows it; the next deciding hub starts from it).
	LastGate *GateResult `json:"lastGate,omitempty"`
	// Events are those of the write that made this generation, so that
	// the other hubs sharing the store show them in their event streams.
	Events []Event `json:"events,omitempty"`
}

// StepState is one started step.
type StepState struct {
	Name      string    `json:"name"`
	Clusters  []string  `json:"clusters"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	// HealthyAt is when every cluster of the step was last found Synced
	// and Healthy at To: the soak runs from then.
	HealthyAt time.Time `json:"healthyAt,omitzero"`
	DoneAt    time.Time `json:"doneAt,omitzero"`
}

// Initial is the state of an app first seen at rev: nothing to roll out
// from, every cluster gets rev.
func Initial(appName, rev string, now time.Time) State {
	return State{App: appName, To: rev, Phase: Completed, StartedAt: now, UpdatedAt: now}
}

// Next returns the state for the app's revision rev: prev if rev is what
// it rolls out already; otherwise a new rollout from the last revision
// every cluster had (the previous rollout's To once it completed, else
// its From). started reports a new rollout (or state).
func Next(prev *State, appName, rev string, now time.Time) (s State, started bool) {
	if prev == nil {
		return Initial(appName, rev, now), true
	}
	if prev.To == rev {
		return *prev, false
	}
	from := prev.From
	if prev.Phase == Completed {
		from = prev.To
	}
	if from == rev || from == "" {
		return Initial(appName, rev, now), true
	}
	return State{App: appName, From: from, To: rev, Phase: Progressing, StartedAt: now, UpdatedAt: now}, true
}

// Done reports whether every cluster has To.
func (s *State) Done() bool { return s.Phase == Completed }

// IsReached reports whether cluster was given To.
func (s *State) IsReached(cluster string) bool {
	_, ok := slices.BinarySearch(s.Reached, cluster)
	return ok
}

// RevisionFor returns the revision cluster should run and, when it is not
// To, why it waits ("waiting for step 2 (wave1)").
func (s *State) RevisionFor(p *Plan, t Target) (rev, waiting string) {
	if s.Done() || s.IsReached(t.Name) {
		return s.To, ""
	}
	switch s.Phase {
	case Halted:
		return s.From, fmt.Sprintf("rollout of %s halted: %s", short(s.To), s.Reason)
	case Aborted:
		return s.From, fmt.Sprintf("rollout of %s aborted", short(s.To))
	}
	i := s.StepOf(p, t)
	return s.From, fmt.Sprintf("waiting for step %d (%s)", i+1, stepName(p, i))
}

// StepOf predicts the step that takes t: the started step listing it, or
// the first step not started yet whose selector matches it (a percentage
// step or the last step otherwise).
func (s *State) StepOf(p *Plan, t Target) int {
	for i, ss := range s.Steps {
		if slices.Contains(ss.Clusters, t.Name) {
			return i
		}
	}
	for i := len(s.Steps); i < len(p.Steps); i++ {
		st := p.Steps[i]
		if st.Selector == nil || st.Selector.Matches(labelsOf(t)) {
			return i
		}
	}
	return len(p.Steps) - 1
}

func stepName(p *Plan, i int) string {
	if i >= 0 && i < len(p.Steps) {
		return p.Steps[i].Name
	}
	return "rest"
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// clone returns a deep copy of s.
func (s State) clone() State {
	s.Steps = slices.Clone(s.Steps)
	for i := range s.Steps {
		s.Steps[i].Clusters = slices.Clone(s.Steps[i].Clusters)
	}
	s.Reached = slices.Clone(s.Reached)
	s.Approved = slices.Clone(s.Approved)
	s.Events = slices.Clone(s.Events)
	if s.LastGate != nil {
		g := *s.LastGate
		s.LastGate = &g
	}
	return s
}
