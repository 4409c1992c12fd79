package httpapi

import (
	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// The store's records as the API shows them (hub/api holds the wire
// types; the store's own types never go over the wire).

func hookViews(hs []store.HookRecord) []api.Hook {
	if hs == nil {
		return nil
	}
	out := make([]api.Hook, len(hs))
	for i, h := range hs {
		out[i] = api.Hook{
			Phase: h.Phase, Group: h.Group, Kind: h.Kind, Namespace: h.Namespace, Name: h.Name, Hook: h.Hook, Wave: h.Wave,
			Status: h.Status, Message: h.Message, StartedAt: h.StartedAt, FinishedAt: h.FinishedAt, Deleted: h.Deleted,
		}
	}
	return out
}

func historyView(e store.HistoryEntry) api.HistoryEntry {
	return api.HistoryEntry{
		ID: e.ID, App: e.App, Cluster: e.Cluster, Revision: e.Revision, Digest: e.Digest, StartedAt: e.StartedAt, FinishedAt: e.FinishedAt,
		InitiatedBy: e.InitiatedBy, Result: e.Result, Message: e.Message, Hooks: hookViews(e.Hooks),
	}
}

func auditView(e store.AuditEntry) api.AuditEntry {
	return api.AuditEntry{ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail}
}

func tokenView(t store.APIToken) api.TokenView {
	return api.TokenView{ID: t.ID, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt}
}
