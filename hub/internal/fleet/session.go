package fleet

import (
	"context"
	"sort"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Session is one agent stream's view of its cluster's desired state.
type Session struct {
	fleet   *Fleet
	cluster string
	sent    map[string]string // app → digest the agent holds; guarded by fleet.mu
	ctx     context.Context
	cancel  context.CancelCauseFunc

	// Attach: signalled and delivered on channels.
	wakeC chan struct{}
	cmds  chan *apiv1alpha1.Command
	// AttachNotify: notify is called instead; queued is guarded by fleet.mu.
	notify func()
	queued []*apiv1alpha1.Command
}

// wake tells the session's reader that Next may have something to send.
// It does not block; fleet.mu may be held.
func (s *Session) wake() {
	if s.notify != nil {
		s.notify()
		return
	}
	select {
	case s.wakeC <- struct{}{}:
	default:
	}
}

// Done is closed when the session is superseded or closed; Cause tells why.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Cause returns why the session ended.
func (s *Session) Cause() error { return context.Cause(s.ctx) }

// Context is done when the session is superseded or closed; its cause
// tells why.
func (s *Session) Context() context.Context { return s.ctx }

// Commands delivers commands queued for this cluster (sessions opened with
// Attach; nil for AttachNotify).
func (s *Session) Commands() <-chan *apiv1alpha1.Command { return s.cmds }

// TakeCommands returns and clears the commands queued for this cluster
// (sessions opened with AttachNotify).
func (s *Session) TakeCommands() []*apiv1alpha1.Command {
	s.fleet.mu.Lock()
	defer s.fleet.mu.Unlock()
	q := s.queued
	s.queued = nil
	return q
}

// Woken is signalled when Next may have something to send (sessions opened
// with Attach; nil for AttachNotify).
func (s *Session) Woken() <-chan struct{} { return s.wakeC }

// Rehello resets what the agent holds (it sent a new Hello on the stream).
func (s *Session) Rehello(held map[string]string) {
	s.fleet.mu.Lock()
	defer s.fleet.mu.Unlock()
	s.sent = map[string]string{}
	for k, v := range held {
		s.sent[k] = v
	}
	s.wake()
}

// Next returns the delta between the desired state and what the agent
// holds, and records it as sent. It returns nil when there is nothing to
// send or the fleet is not ready yet (before the first desired state is
// known, nothing is removed from any agent).
func (s *Session) Next() *apiv1alpha1.DesiredState {
	f := s.fleet
	f.mu.Lock()
	if !f.isReady {
		f.mu.Unlock()
		return nil
	}
	want := f.desired[s.cluster]
	var out apiv1alpha1.DesiredState
	for app, b := range want {
		if b == nil { // unknown now: hold what the agent has
			continue
		}
		if s.sent[app] != b.GetDigest() {
			out.Bundles = append(out.Bundles, b)
		}
	}
	for app := range s.sent {
		if _, ok := want[app]; !ok {
			out.RemovedApps = append(out.RemovedApps, app)
		}
	}
	if len(out.Bundles) == 0 && len(out.RemovedApps) == 0 {
		f.mu.Unlock()
		return nil
	}
	for _, b := range out.Bundles {
		s.sent[b.GetApp()] = b.GetDigest()
	}
	for _, app := range out.RemovedApps {
		delete(s.sent, app)
	}
	f.mu.Unlock()
	sort.Slice(out.Bundles, func(i, j int) bool { return out.Bundles[i].GetApp() < out.Bundles[j].GetApp() })
	sort.Strings(out.RemovedApps)
	return &out
}

// Close detaches the session from the fleet.
func (s *Session) Close() {
	s.cancel(context.Canceled)
	s.fleet.detach(s)
}
