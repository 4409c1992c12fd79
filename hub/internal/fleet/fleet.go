package fleet

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// ErrNotConnected is returned when a command is sent to a cluster with no
// connected agent.
var ErrNotConnected = errors.New("agent not connected")

// ErrSuperseded ends a session replaced by a newer one or closed because its
// cluster was removed or re-enrolled.
var ErrSuperseded = errors.New("session superseded")

// Desired is the desired state of one cluster: app name → bundle. A nil
// bundle means "the app targets this cluster but its bundle is unknown right
// now" (a render or git error): the agent keeps what it holds and the app is
// never removed because of the error.
type Desired map[string]*apiv1alpha1.Bundle

// Fleet is safe for concurrent use.
type Fleet struct {
	mu      sync.Mutex
	ready   chan struct{} // closed once the first desired state is known
	isReady bool
	desired map[string]Desired
	// last holds, per cluster, the apps of its desired state before the
	// last change of its app set: apps just removed, whose agent still
	// reports their removal.
	last     map[string]map[string]struct{}
	sessions map[string]*Session
	status   map[string]map[string]*apiv1alpha1.AppStatus // cluster → app → status
	seen     map[string]time.Time
	watchers map[chan struct{}]struct{}
	// reports are signalled on Report only (see WatchReports).
	reports map[chan struct{}]struct{}
	now     func() time.Time
	// presence and sessionsChanged serve hubs sharing a store (remote.go).
	presence        Presence
	sessionsChanged func(cluster string)
}

// New returns an empty fleet that is not ready.
func New() *Fleet {
	return &Fleet{
		ready:    make(chan struct{}),
		desired:  map[string]Desired{},
		last:     map[string]map[string]struct{}{},
		sessions: map[string]*Session{},
		status:   map[string]map[string]*apiv1alpha1.AppStatus{},
		seen:     map[string]time.Time{},
		watchers: map[chan struct{}]struct{}{},
		reports:  map[chan struct{}]struct{}{},
		now:      time.Now,
	}
}

// SetAll replaces the desired state of every cluster at once, marks the
// fleet ready and wakes the sessions whose state changed. Clusters missing
// from all have nothing desired.
func (f *Fleet) SetAll(all map[string]Desired) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.desired
	f.desired = all
	for cluster, d := range old {
		if !sameApps(d, all[cluster]) {
			f.last[cluster] = appSet(d)
		}
	}
	first := !f.isReady
	if first {
		f.isReady = true
		close(f.ready)
	}
	for cluster, s := range f.sessions {
		if first || !sameDigests(old[cluster], all[cluster]) {
			s.wake()
		}
	}
	f.broadcast()
}

// DesiredOf returns a copy of cluster's desired state.
func (f *Fleet) DesiredOf(cluster string) Desired {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.desired[cluster])
}

func sameApps(a, b Desired) bool {
	if len(a) != len(b) {
		return false
	}
	for app := range a {
		if _, ok := b[app]; !ok {
			return false
		}
	}
	return true
}

func appSet(d Desired) map[string]struct{} {
	out := make(map[string]struct{}, len(d))
	for app := range d {
		out[app] = struct{}{}
	}
	return out
}

// Accepts reports whether cluster's agent may report a status (and
// history) for app: app is in the cluster's current desired state or in
// the one before the last change of its apps, or the hub holds a status of
// app on cluster already (reported earlier, or restored at start-up). An
// agent cannot make the hub keep statuses of apps it was never given.
func (f *Fleet) Accepts(cluster, app string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.desired[cluster][app]; ok {
		return true
	}
	if _, ok := f.last[cluster][app]; ok {
		return true
	}
	_, ok := f.status[cluster][app]
	return ok
}

func sameDigests(a, b Desired) bool {
	if len(a) != len(b) {
		return false
	}
	for app, ba := range a {
		bb, ok := b[app]
		if !ok || digestOf(ba) != digestOf(bb) {
			return false
		}
	}
	return true
}

func digestOf(b *apiv1alpha1.Bundle) string {
	if b == nil {
		return ""
	}
	return b.GetDigest()
}

// Attach opens a session for cluster whose agent holds held (app → digest).
// The session signals Woken when Next may have something to send and
// delivers commands on Commands. An older session of the same cluster is
// closed with ErrSuperseded.
func (f *Fleet) Attach(cluster string, held map[string]string) *Session {
	s := f.newSession(cluster, held)
	s.wakeC = make(chan struct{}, 1)
	s.cmds = make(chan *apiv1alpha1.Command, MaxQueuedCommands)
	f.attach(s)
	return s
}

// AttachNotify opens a session like Attach, for a caller that has no
// goroutine waiting on the session: instead of signalling Woken and
// delivering commands on Commands, the session calls notify whenever Next
// may have something to send or a command was queued (TakeCommands returns
// it). notify must not block and must not call into the fleet: it may be
// called with the fleet's lock held. The first call comes from
// AttachNotify itself.
func (f *Fleet) AttachNotify(cluster string, held map[string]string, notify func()) *Session {
	s := f.newSession(cluster, held)
	s.notify = notify
	f.attach(s)
	return s
}

func (f *Fleet) newSession(cluster string, held map[string]string) *Session {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Session{fleet: f, cluster: cluster, sent: maps.Clone(held), ctx: ctx, cancel: cancel}
	if s.sent == nil {
		s.sent = map[string]string{}
	}
	return s
}

func (f *Fleet) attach(s *Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.sessions[s.cluster]; old != nil {
		old.cancel(ErrSuperseded)
	}
	f.sessions[s.cluster] = s
	f.seen[s.cluster] = f.now()
	f.broadcast()
	f.sessionChanged(s.cluster)
	s.wake()
}

// Close ends cluster's session, if any, with cause (for example after the
// cluster was removed or re-enrolled).
func (f *Fleet) Close(cluster string, cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.sessions[cluster]; s != nil {
		s.cancel(cause)
		delete(f.sessions, cluster)
		f.sessionChanged(cluster)
	}
}

// Forget drops everything known about cluster (it was removed).
func (f *Fleet) Forget(cluster string) {
	f.mu.Lock()
	delete(f.status, cluster)
	delete(f.seen, cluster)
	delete(f.last, cluster)
	f.mu.Unlock()
	f.Close(cluster, ErrSuperseded)
}

func (f *Fleet) detach(s *Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions[s.cluster] == s {
		delete(f.sessions, s.cluster)
		f.seen[s.cluster] = f.now()
		f.broadcast()
		f.sessionChanged(s.cluster)
	}
}

// Connected reports whether cluster has a live session, and when it was last
// seen.
func (f *Fleet) Connected(cluster string) (bool, time.Time) {
	f.mu.Lock()
	_, ok := f.sessions[cluster]
	seen, p := f.seen[cluster], f.presence
	f.mu.Unlock()
	if p != nil {
		return p(cluster, ok, seen)
	}
	return ok, seen
}

// ConnectedCount returns the number of live sessions.
func (f *Fleet) ConnectedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

// MaxQueuedCommands bounds the commands queued for one agent and not yet
// sent.
const MaxQueuedCommands = 64

// ErrCommandQueueFull is returned when MaxQueuedCommands are already queued
// for a cluster's agent.
var ErrCommandQueueFull = errors.New("the agent's command queue is full")

// SendCommand queues cmd for cluster's agent. For a session opened with
// Attach it waits while the queue is full; for one opened with
// AttachNotify it returns ErrCommandQueueFull instead.
func (f *Fleet) SendCommand(cluster string, cmd *apiv1alpha1.Command) error {
	f.mu.Lock()
	s := f.sessions[cluster]
	if s != nil && s.notify != nil {
		defer f.mu.Unlock()
		if len(s.queued) >= MaxQueuedCommands {
			return ErrCommandQueueFull
		}
		s.queued = append(s.queued, cmd)
		s.notify()
		return nil
	}
	f.mu.Unlock()
	if s == nil {
		return ErrNotConnected
	}
	select {
	case s.cmds <- cmd:
		return nil
	case <-s.ctx.Done():
		return ErrNotConnected
	}
}

// Report records an app status sent by cluster's agent. It returns the
// previous status (nil if none).
func (f *Fleet) Report(cluster string, st *apiv1alpha1.AppStatus) *apiv1alpha1.AppStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.status[cluster]
	if m == nil {
		m = map[string]*apiv1alpha1.AppStatus{}
		f.status[cluster] = m
	}
	prev := m[st.GetApp()]
	if st.GetRemoved() {
		delete(m, st.GetApp())
	} else {
		m[st.GetApp()] = st
	}
	f.seen[cluster] = f.now()
	f.broadcast()
	f.signalReports()
	return prev
}

func (f *Fleet) signalReports() {
	for ch := range f.reports {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// StatusOf returns the last status cluster's agent reported for app (nil:
// none).
func (f *Fleet) StatusOf(cluster, app string) *apiv1alpha1.AppStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status[cluster][app]
}

// WatchReports returns a channel signalled (coalesced) after every status
// an agent reports, and not on changes of desired state (which a
// reconcile makes: a reconcile may watch this without waking itself);
// cancel stops it.
func (f *Fleet) WatchReports() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.reports[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.reports, ch)
		f.mu.Unlock()
	}
}

// Restore seeds statuses read from the store at start-up.
func (f *Fleet) Restore(cluster string, sts []*apiv1alpha1.AppStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.status[cluster]
	if m == nil {
		m = map[string]*apiv1alpha1.AppStatus{}
		f.status[cluster] = m
	}
	for _, st := range sts {
		m[st.GetApp()] = st
	}
}

// Status returns cluster → app → status, a snapshot.
func (f *Fleet) Status() map[string]map[string]*apiv1alpha1.AppStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]map[string]*apiv1alpha1.AppStatus, len(f.status))
	for c, m := range f.status {
		out[c] = maps.Clone(m)
	}
	return out
}

// Watch returns a channel signalled (coalesced) after every change of
// desired state, status or connection; cancel stops it.
func (f *Fleet) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.watchers[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}
}

func (f *Fleet) broadcast() {
	for ch := range f.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
