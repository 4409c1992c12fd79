package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func sel(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

// fleet5 are five clusters: one canary, two of wave1, two of wave2.
var fleet5 = []Target{
	{Name: "c1", Labels: map[string]string{"wave": "canary"}},
	{Name: "c2", Labels: map[string]string{"wave": "wave1"}},
	{Name: "c3", Labels: map[string]string{"wave": "wave1"}},
	{Name: "c4", Labels: map[string]string{"wave": "wave2"}},
	{Name: "c5", Labels: map[string]string{"wave": "wave2"}},
}

func waves(mod func(*app.Rollout)) *Plan {
	r := &app.Rollout{Steps: []app.RolloutStep{
		{Name: "canary", ClusterSelector: sel("wave", "canary"), Soak: "1m"},
		{Name: "wave1", ClusterSelector: sel("wave", "wave1"), Soak: "1m"},
		{Name: "wave2", ClusterSelector: sel("wave", "wave2")},
	}}
	if mod != nil {
		mod(r)
	}
	p, err := Compile(r)
	if err != nil {
		panic(err)
	}
	return p
}

// tick is one call of Advance: at t0+at, with the clusters updated (Synced
// and Healthy at To) and degraded, or an operation.
type tick struct {
	at       time.Duration
	updated  []string
	degraded []string
	gate     *GateResult
	op       func(State, string, time.Time) (State, Event, error)
}

// after is what a person would check after a tick.
type after struct {
	Phase     Phase
	Paused    bool
	Step      int
	Reached   []string
	Reason    string
	Events    []string
	Wake      time.Duration
	CheckGate bool
}

func summarize(s State, out Output) after {
	a := after{Phase: s.Phase, Paused: s.Paused, Step: s.Step, Reached: s.Reached, Reason: s.Reason, CheckGate: out.CheckGate}
	for _, e := range out.Events {
		a.Events = append(a.Events, e.Type)
	}
	if !out.Wake.IsZero() {
		a.Wake = out.Wake.Sub(t0)
	}
	return a
}

func obs(updated, degraded []string) map[string]Observed {
	m := map[string]Observed{}
	for _, c := range updated {
		m[c] = Observed{Updated: true}
	}
	for _, c := range degraded {
		m[c] = Observed{Degraded: true}
	}
	return m
}

func TestAdvance(t *testing.T) {
	threshold := 0.05
	tests := []struct {
		name    string
		plan    *Plan
		targets []Target
		ticks   []tick
		want    []after
	}{
		{
			name: "canary, soak, wave1, soak, wave2, completed",
			plan: waves(nil), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, updated: []string{"c1"}},
				{at: 30 * time.Second, updated: []string{"c1"}},
				{at: 61 * time.Second, updated: []string{"c1"}},
				{at: 70 * time.Second, updated: []string{"c1", "c2", "c3"}},
				{at: 130 * time.Second, updated: []string{"c1", "c2", "c3"}},
				{at: 140 * time.Second, updated: []string{"c1", "c2", "c3", "c4", "c5"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepHealthy}, Wake: 61 * time.Second},
				{Phase: Progressing, Reached: []string{"c1"}, Wake: 61 * time.Second},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventStepDone, EventStepStarted, EventReached}, Wake: 61*time.Second + 10*time.Minute},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventStepHealthy}, Wake: 130 * time.Second},
				{Phase: Progressing, Step: 2, Reached: []string{"c1", "c2", "c3", "c4", "c5"}, Events: []string{EventStepDone, EventStepStarted, EventReached}, Wake: 130*time.Second + 10*time.Minute},
				{Phase: Completed, Step: 4, Reached: []string{"c1", "c2", "c3", "c4", "c5"}, Events: []string{EventStepHealthy, EventStepDone, EventCompleted}},
			},
		},
		{
			name: "maxUnavailable 1: wave1 one cluster at a time",
			plan: waves(func(r *app.Rollout) { r.MaxUnavailable = &intstr.IntOrString{Type: intstr.Int, IntVal: 1} }), targets: fleet5,
			ticks: []tick{
				{at: 0, updated: nil},
				{at: 2 * time.Minute, updated: []string{"c1"}},
				{at: 4 * time.Minute, updated: []string{"c1"}},
				{at: 5 * time.Minute, updated: []string{"c1", "c2"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepHealthy}, Wake: 3 * time.Minute},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2"}, Events: []string{EventStepDone, EventStepStarted, EventReached}, Wake: 14 * time.Minute},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventReached}, Wake: 14 * time.Minute},
			},
		},
		{
			name: "a Degraded canary halts; autoRollback returns it to From; wave1 never reached",
			plan: waves(func(r *app.Rollout) { r.AutoRollback = true }), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, degraded: []string{"c1"}},
				{at: 2 * time.Minute, updated: []string{"c1"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Halted, Reason: "cluster c1 is Degraded at new", Events: []string{EventHalted, EventRolledBack}},
				{Phase: Halted, Reason: "cluster c1 is Degraded at new"},
			},
		},
		{
			name: "the canary misses its deadline: halted, without autoRollback it keeps To",
			plan: waves(func(r *app.Rollout) { r.StepDeadline = "2m" }), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Minute},
				{at: 2 * time.Minute},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 2 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Wake: 2 * time.Minute},
				{Phase: Halted, Reached: []string{"c1"}, Reason: "step 1 (canary): c1 not Synced and Healthy within 2m0s", Events: []string{EventHalted}},
			},
		},
		{
			name: "a cluster falling back during the soak restarts the soak",
			plan: waves(nil), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, updated: []string{"c1"}},
				{at: 50 * time.Second},
				{at: 70 * time.Second, updated: []string{"c1"}},
				{at: 71 * time.Second, updated: []string{"c1"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepHealthy}, Wake: 61 * time.Second},
				{Phase: Progressing, Reached: []string{"c1"}, Wake: 10 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepHealthy}, Wake: 130 * time.Second},
				{Phase: Progressing, Reached: []string{"c1"}, Wake: 130 * time.Second},
			},
		},
		{
			name: "approval before wave2; approve starts it",
			plan: waves(func(r *app.Rollout) { r.Steps[0].Soak, r.Steps[1].Soak, r.Steps[2].Approval = "", "", true }), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, updated: []string{"c1"}},
				{at: 2 * time.Second, updated: []string{"c1", "c2", "c3"}},
				{at: 3 * time.Second, updated: []string{"c1", "c2", "c3"}},
				{at: 4 * time.Second, op: Approve},
				{at: 5 * time.Second, updated: []string{"c1", "c2", "c3"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventStepHealthy, EventStepDone, EventStepStarted, EventReached}, Wake: time.Second + 10*time.Minute},
				{Phase: WaitingApproval, Step: 2, Reached: []string{"c1", "c2", "c3"}, Reason: "step 3 (wave2) waits for approval", Events: []string{EventStepHealthy, EventStepDone, EventWaitingApproval}},
				{Phase: WaitingApproval, Step: 2, Reached: []string{"c1", "c2", "c3"}, Reason: "step 3 (wave2) waits for approval"},
				{Phase: Progressing, Step: 2, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventApproved}},
				{Phase: Progressing, Step: 2, Reached: []string{"c1", "c2", "c3", "c4", "c5"}, Events: []string{EventStepStarted, EventReached}, Wake: 5*time.Second + 10*time.Minute},
			},
		},
		{
			name: "pause holds the next step; the soak runs on while paused",
			plan: waves(nil), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, updated: []string{"c1"}},
				{at: 10 * time.Second, op: Pause},
				{at: 5 * time.Minute, updated: []string{"c1"}},
				{at: 6 * time.Minute, op: Resume},
				{at: 6*time.Minute + time.Second, updated: []string{"c1"}},
				{at: 7 * time.Minute, updated: []string{"c1"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepHealthy}, Wake: 61 * time.Second},
				{Phase: Progressing, Paused: true, Reached: []string{"c1"}, Events: []string{EventPaused}},
				{Phase: Progressing, Paused: true, Reached: []string{"c1"}},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventResumed}},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventStepDone, EventStepStarted, EventReached}, Wake: 16*time.Minute + time.Second},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Wake: 16*time.Minute + time.Second},
			},
		},
		{
			name: "the time paused does not count against the step deadline",
			plan: waves(func(r *app.Rollout) { r.StepDeadline = "2m" }), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: 10 * time.Second, op: Pause},
				{at: 5 * time.Minute},
				{at: 6 * time.Minute, op: Resume},
				{at: 7 * time.Minute},
				{at: 8 * time.Minute},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 2 * time.Minute},
				{Phase: Progressing, Paused: true, Reached: []string{"c1"}, Events: []string{EventPaused}},
				{Phase: Progressing, Paused: true, Reached: []string{"c1"}},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventResumed}},
				{Phase: Progressing, Reached: []string{"c1"}, Wake: 7*time.Minute + 50*time.Second},
				{Phase: Halted, Reached: []string{"c1"}, Reason: "step 1 (canary): c1 not Synced and Healthy within 2m0s", Events: []string{EventHalted}},
			},
		},
		{
			name: "abort returns the reached clusters; retry starts again from step 1",
			plan: waves(nil), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, op: Abort},
				{at: 2 * time.Second},
				{at: 3 * time.Second, op: Retry},
				{at: 4 * time.Second},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Aborted, Reason: "aborted by alice", Events: []string{EventAborted}},
				{Phase: Aborted, Reason: "aborted by alice"},
				{Phase: Progressing, Events: []string{EventRetried}},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 4*time.Second + 10*time.Minute},
			},
		},
		{
			name: "percentages of the remaining targets, then the implicit rest",
			plan: func() *Plan {
				p, _ := Compile(&app.Rollout{Steps: []app.RolloutStep{{Percent: 20}, {Percent: 50}}})
				return p
			}(), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, updated: []string{"c1"}},
				{at: 2 * time.Second, updated: []string{"c1", "c2", "c3"}},
				{at: 3 * time.Second, updated: []string{"c1", "c2", "c3", "c4", "c5"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventStepHealthy, EventStepDone, EventStepStarted, EventReached}, Wake: time.Second + 10*time.Minute},
				{Phase: Progressing, Step: 2, Reached: []string{"c1", "c2", "c3", "c4", "c5"}, Events: []string{EventStepHealthy, EventStepDone, EventStepStarted, EventReached}, Wake: 2*time.Second + 10*time.Minute},
				{Phase: Completed, Step: 3, Reached: []string{"c1", "c2", "c3", "c4", "c5"}, Events: []string{EventStepHealthy, EventStepDone, EventCompleted}},
			},
		},
		{
			name: "gate: checked during the soak and again at its end; a failed check halts",
			plan: waves(func(r *app.Rollout) {
				r.Steps[0].Gate = &app.RolloutGate{URL: "http://prom/api/v1/query?query=x", Max: &threshold, Interval: "20s"}
			}), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, updated: []string{"c1"}},
				{at: 2 * time.Second, updated: []string{"c1"}, gate: &GateResult{Step: 0, At: t0.Add(2 * time.Second), OK: true, Detail: "0.01"}},
				{at: 62 * time.Second, updated: []string{"c1"}, gate: &GateResult{Step: 0, At: t0.Add(22 * time.Second), OK: true, Detail: "0.01"}},
				{at: 63 * time.Second, updated: []string{"c1"}, gate: &GateResult{Step: 0, At: t0.Add(63 * time.Second), OK: false, Detail: "0.5 > 0.05"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepHealthy}, Wake: 21 * time.Second, CheckGate: true},
				{Phase: Progressing, Reached: []string{"c1"}, Wake: 22 * time.Second},
				{Phase: Progressing, Reached: []string{"c1"}, Wake: 82 * time.Second, CheckGate: true},
				{Phase: Halted, Reached: []string{"c1"}, Reason: "step 1 (canary): gate failed: 0.5 > 0.05", Events: []string{EventHalted}},
			},
		},
		{
			name: "gate passing after the soak ends the step",
			plan: waves(func(r *app.Rollout) {
				r.Steps[0].Gate = &app.RolloutGate{URL: "http://prom/api/v1/query?query=x", Max: &threshold}
			}), targets: fleet5,
			ticks: []tick{
				{at: 0},
				{at: time.Second, updated: []string{"c1"}, gate: &GateResult{Step: 0, At: t0.Add(time.Second), OK: true}},
				{at: 62 * time.Second, updated: []string{"c1"}, gate: &GateResult{Step: 0, At: t0.Add(62 * time.Second), OK: true, Detail: "0.01"}},
			},
			want: []after{
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepStarted, EventReached}, Wake: 10 * time.Minute},
				{Phase: Progressing, Reached: []string{"c1"}, Events: []string{EventStepHealthy}, Wake: 31 * time.Second},
				{Phase: Progressing, Step: 1, Reached: []string{"c1", "c2", "c3"}, Events: []string{EventStepDone, EventStepStarted, EventReached}, Wake: 62*time.Second + 10*time.Minute},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := Next(&State{App: "web", To: "old", Phase: Completed}, "web", "new", t0)
			var got []after
			for _, tk := range tc.ticks {
				now := t0.Add(tk.at)
				if tk.op != nil {
					var (
						e   Event
						err error
					)
					s, e, err = tk.op(s, "alice", now)
					if err != nil {
						t.Fatalf("at %s: %v", tk.at, err)
					}
					got = append(got, summarize(s, Output{Events: []Event{e}}))
					continue
				}
				var out Output
				s, out = Advance(tc.plan, s, Input{Targets: tc.targets, Observed: obs(tk.updated, tk.degraded), Gate: tk.gate, Now: now})
				got = append(got, summarize(s, out))
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("ticks (-want +got):\n%s", d)
			}
		})
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name     string
		prev     *State
		rev      string
		wantFrom string
		want     Phase
		started  bool
	}{
		{name: "first revision seen: no rollout", rev: "r1", want: Completed, started: true},
		{name: "same revision", prev: &State{From: "r1", To: "r2", Phase: Progressing}, rev: "r2", wantFrom: "r1", want: Progressing},
		{name: "after a completed rollout", prev: &State{From: "r1", To: "r2", Phase: Completed}, rev: "r3", wantFrom: "r2", want: Progressing, started: true},
		{name: "during a rollout: from the last revision every cluster had", prev: &State{From: "r1", To: "r2", Phase: Halted}, rev: "r3", wantFrom: "r1", want: Progressing, started: true},
		{name: "back to that revision: nothing to roll out", prev: &State{From: "r1", To: "r2", Phase: Progressing}, rev: "r1", want: Completed, started: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, started := Next(tc.prev, "web", tc.rev, t0)
			if s.From != tc.wantFrom || s.Phase != tc.want || started != tc.started || s.To != tc.rev {
				t.Errorf("Next = from %q to %q %s started %v; want from %q to %q %s started %v", s.From, s.To, s.Phase, started, tc.wantFrom, tc.rev, tc.want, tc.started)
			}
		})
	}
}

func TestRevisionFor(t *testing.T) {
	p := waves(nil)
	s, _ := Next(&State{App: "web", To: "old", Phase: Completed}, "web", "new", t0)
	s, _ = Advance(p, s, Input{Targets: fleet5, Now: t0})
	var got []string
	for _, tg := range fleet5 {
		rev, why := s.RevisionFor(p, tg)
		got = append(got, tg.Name+" "+rev+" "+why)
	}
	want := []string{
		"c1 new ",
		"c2 old waiting for step 2 (wave1)",
		"c3 old waiting for step 2 (wave1)",
		"c4 old waiting for step 3 (wave2)",
		"c5 old waiting for step 3 (wave2)",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RevisionFor (-want +got):\n%s", d)
	}
}
