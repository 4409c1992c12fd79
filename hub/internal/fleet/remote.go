package fleet

import (
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
	return true
}

// CloseAll ends every session with cause (this hub lost its store: the
// agents go to another).
func (f *Fleet) CloseAll(cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c, s := range f.sessions {
		s.cancel(cause)
		delete(f.sessions, c)
	}
	f.broadcast()
}
