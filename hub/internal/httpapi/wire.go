package httpapi

import (
	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// The store's records as the API shows them (hub/api holds the wire
// types; the store's own types never go over the wire).

func auditView(e store.AuditEntry) api.AuditEntry {
	return api.AuditEntry{ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail}
}

func tokenView(t store.APIToken) api.TokenView {
	return api.TokenView{ID: t.ID, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt, Projects: t.Projects, ExpiresAt: t.ExpiresAt, Kind: t.Kind}
}
