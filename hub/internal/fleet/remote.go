package fleet

import (
	"time"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Several hubs sharing one store each hold some agents' streams; what the
// others' agents report reaches this fleet through the store (see
// hub/internal/ha).

// HasSession reports whether cluster's agent is connected to this hub.
func (f *Fleet) HasSession(cluster string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[cluster] != nil
}

// ApplyRemote records statuses another hub stored for cluster: set
// replaces those apps' statuses, removed drops apps. It is ignored while
// cluster's agent is connected here: this hub then has the newer word.
// It reports whether it applied anything.
func (f *Fleet) ApplyRemote(cluster string, set []*apiv1alpha1.AppStatus, removed []string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions[cluster] != nil {
		return false
	}
	m := f.status[cluster]
	if m == nil {
		m = map[string]*apiv1alpha1.AppStatus{}
		f.status[cluster] = m
	}
	for _, app := range removed {
		delete(m, app)
	}
	for _, st := range set {
		m[st.GetApp()] = st
	}
	f.broadcast()
	f.signalReports() // the hub deciding rollouts reads every agent's reports
	return true
}

// Sessions returns the clusters whose agent is connected to this hub.
func (f *Fleet) Sessions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.sessions))
	for c := range f.sessions {
		out = append(out, c)
	}
	return out
}

// CloseAll ends every session with cause (this hub lost its store: the
// agents go to another).
func (f *Fleet) CloseAll(cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c, s := range f.sessions {
		s.cancel(cause)
		delete(f.sessions, c)
		f.sessionChanged(c)
	}
	f.broadcast()
}

// Presence answers whether a cluster's agent is connected, and when it was
// last seen, for hubs sharing a store: local and seen are what this hub
// knows (a session held here, the last report here).
type Presence func(cluster string, local bool, seen time.Time) (bool, time.Time)

// SetPresence makes Connected answer through p (nil: this hub's sessions
// only).
func (f *Fleet) SetPresence(p Presence) {
	f.mu.Lock()
	f.presence = p
	f.mu.Unlock()
}

// Changed tells the fleet's watchers (the event streams) that something
// they show changed elsewhere (another hub's agent connected).
func (f *Fleet) Changed() {
	f.mu.Lock()
	f.broadcast()
	f.mu.Unlock()
}

// OnSessionChange makes fn be called (under the fleet's lock: it must not
// block or call the fleet) whenever a session starts or ends.
func (f *Fleet) OnSessionChange(fn func(cluster string)) {
	f.mu.Lock()
	f.sessionsChanged = fn
	f.mu.Unlock()
}

func (f *Fleet) sessionChanged(cluster string) {
	if f.sessionsChanged != nil {
		f.sessionsChanged(cluster)
	}
}
