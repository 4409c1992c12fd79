package engine

import "github.com/flotilla-cd/flotilla/agent/internal/inventory"

// Owned returns the inventory of app: every object the app may own in the
// cluster, as the agent recorded it (never as the hub says). ok is false
// when the agent holds no such app or the hub removed it.
func (e *Engine) Owned(app string) (objs []inventory.Entry, ok bool) {
	e.mu.Lock()
	a := e.apps[app]
	e.mu.Unlock()
	if a == nil {
		return nil, false
	}
	a.mu.Lock()
	removed := a.removed
	a.mu.Unlock()
	if removed {
		return nil, false
	}
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	return append([]inventory.Entry(nil), a.inventory...), true
}
