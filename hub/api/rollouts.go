package api

import "time"

// RolloutView is an app's progressive rollout (GET
// /api/v1/apps/{name}/rollout; POST /api/v1/apps/{name}/rollout/{action}
// with action pause, resume, approve, abort or retry answers with it).
type RolloutView struct {
	App string `json:"app"`
	// From is the revision clusters not reached keep; To the one rolled
	// out.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// Phase is Progressing, WaitingApproval, Halted, Aborted or
	// Completed; Paused is set while a person paused it.
	Phase  string `json:"phase"`
	Paused bool   `json:"paused,omitempty"`
	// Reason says why it stopped or waits.
	Reason string `json:"reason,omitempty"`
	// CurrentStep is the 1-based step it is at (len(Steps)+1 once every
	// step is done).
	CurrentStep  int               `json:"currentStep"`
	RolledBack   bool              `json:"rolledBack,omitempty"`
	AutoRollback bool              `json:"autoRollback,omitempty"`
	StartedAt    time.Time         `json:"startedAt,omitzero"`
	UpdatedAt    time.Time         `json:"updatedAt,omitzero"`
	Steps        []RolloutStepView `json:"steps"`
	// Gate is the last check of the current step's gate.
	Gate *RolloutGateView `json:"gate,omitempty"`
}

// RolloutStepView is one step with its clusters (those it took once
// started; those it is expected to take before).
type RolloutStepView struct {
	Number int    `json:"number"`
	Name   string `json:"name"`
	// Selector or Percent say which clusters it takes (neither: every
	// remaining one).
	Selector string `json:"selector,omitempty"`
	Percent  int    `json:"percent,omitempty"`
	Soak     string `json:"soak,omitempty"`
	Deadline string `json:"deadline,omitempty"`
	Approval bool   `json:"approval,omitempty"`
	Gate     string `json:"gate,omitempty"`
	// Implicit: the step the hub adds for clusters no listed step takes.
	Implicit bool `json:"implicit,omitempty"`
	// State is Pending, WaitingApproval, Progressing, Soaking, Done or
	// Halted.
	State     string               `json:"state"`
	Clusters  []RolloutClusterView `json:"clusters"`
	StartedAt time.Time            `json:"startedAt,omitzero"`
	HealthyAt time.Time            `json:"healthyAt,omitzero"`
	DoneAt    time.Time            `json:"doneAt,omitzero"`
}

// RolloutClusterView is one cluster of a step.
type RolloutClusterView struct {
	Cluster string `json:"cluster"`
	// Reached: the cluster was given To.
	Reached  bool   `json:"reached"`
	Revision string `json:"revision,omitempty"`
	Sync     string `json:"sync"`
	Health   string `json:"health"`
}

// RolloutGateView is one check of a step's Prometheus gate.
type RolloutGateView struct {
	Step   int       `json:"step"`
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail,omitempty"`
}

// RolloutEvent is one rollout event, as the event stream (GET
// /api/v1/events, event "rollout") sends it.
type RolloutEvent struct {
	Type     string    `json:"type"`
	App      string    `json:"app"`
	Revision string    `json:"revision"`
	Step     int       `json:"step,omitempty"`
	StepName string    `json:"stepName,omitempty"`
	Clusters []string  `json:"clusters,omitempty"`
	Message  string    `json:"message,omitempty"`
	Time     time.Time `json:"time"`
}
