package httpapi

import (
	"fmt"
	"net/http"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/status"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// appHistory lists an app's history. An app no longer defined keeps its
// history; a name that is neither defined nor in the history is a 404.
func (a *API) appHistory(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !a.d.Status.Known(name) {
		es, _, err := a.d.Store.ListHistory(r.Context(), name, "", store.Page{Limit: 1})
		if err == nil && len(es) == 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("application %q not found", name))
			return
		}
	}
	a.history(w, r, name, r.URL.Query().Get("cluster"))
}

func (a *API) clusterHistory(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.d.Store.GetCluster(r.Context(), name); err != nil {
		storeError(w, err, fmt.Sprintf("cluster %q", name))
		return
	}
	a.history(w, r, r.URL.Query().Get("app"), name)
}

// history lists sync history newest first, filtered by app and cluster.
func (a *API) history(w http.ResponseWriter, r *http.Request, app, cluster string) {
	p, err := pageOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	es, next, err := a.d.Store.ListHistory(r.Context(), app, cluster, p)
	if err != nil {
		storeError(w, err, "history")
		return
	}
	out := api.ListResponse[api.HistoryEntry]{Items: make([]api.HistoryEntry, len(es)), Next: next}
	for i, e := range es {
		out.Items[i] = status.HistoryView(e)
	}
	writeJSON(w, http.StatusOK, out)
}

// rollback pins (app, cluster) to an earlier revision and suspends its
// auto-sync until unpin (status.Service.Rollback).
func (a *API) rollback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.RollbackRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	resp, err := a.d.Status.Rollback(r.Context(), name, req, callerOf(r.Context()).Name)
	if err != nil {
		statusError(w, err)
		return
	}
	a.audit(r, "app.rollback", name, fmt.Sprintf("revision=%s cluster=%s", resp.Revision, resp.Cluster))
	writeJSON(w, http.StatusAccepted, resp)
}

func (a *API) unpin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.UnpinRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if err := a.d.Status.Unpin(r.Context(), name, req.Cluster); err != nil {
		statusError(w, err)
		return
	}
	a.audit(r, "app.unpin", name, "cluster="+req.Cluster)
	writeJSON(w, http.StatusAccepted, api.UnpinResponse{App: name, Cluster: req.Cluster})
}
