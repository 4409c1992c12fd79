package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// appHistory lists an app's history. An app no longer defined keeps its
// history; a name that is neither defined nor in the history is a 404.
func (a *API) appHistory(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	known := false
	for _, as := range a.d.Controller.Snapshot().Apps {
		known = known || as.Name == name
	}
	if !known {
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
		out.Items[i] = historyView(e)
	}
	writeJSON(w, http.StatusOK, out)
}

// rollback pins (app, cluster) to an earlier revision and suspends its
// auto-sync until unpin, as Argo CD does: the controller renders the
// pinned revision into a bundle whose sync policy has automated=false (so
// the agent neither applies it on receipt nor self-heals), and once each
// connected agent reports that it holds that bundle a SYNC command makes it
// apply it once. Git changes no longer reach the pinned target; unpin
// restores the app's own policy, and with it auto-sync to its
// targetRevision. Pins are kept in the hub's store, so a restarted hub keeps them.
func (a *API) rollback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.RollbackRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if (req.Revision == "") == (req.HistoryID == 0) {
		writeError(w, http.StatusBadRequest, "rollback needs exactly one of revision or historyId")
		return
	}
	rev := req.Revision
	if req.HistoryID != 0 {
		e, err := a.d.Store.GetHistory(r.Context(), req.HistoryID)
		if err != nil {
			storeError(w, err, fmt.Sprintf("history entry %d", req.HistoryID))
			return
		}
		if e.App != name {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("history entry %d belongs to application %q, not %q", e.ID, e.App, name))
			return
		}
		if e.Revision == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("history entry %d has no revision", e.ID))
			return
		}
		rev = e.Revision
		if req.Cluster == "" {
			req.Cluster = e.Cluster
		}
	}
	targets, ok := a.appTargets(w, name, req.Cluster)
	if !ok {
		return
	}
	changed, stop := a.d.Fleet.Watch()
	defer stop()
	if err := a.d.Controller.Pin(r.Context(), name, req.Cluster, rev); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), a.d.CommandTimeout)
	defer cancel()
	resp := api.RollbackResponse{App: name, Revision: rev, Cluster: req.Cluster}
	want := map[string]bool{}
	for _, t := range targets {
		want[t.Cluster] = true
	}
	var states map[string]rollbackState
	for {
		var done bool
		states, done = a.rollbackStates(name, rev, want)
		if done {
			break
		}
		select {
		case <-changed:
			continue
		case <-ctx.Done():
		}
		break
	}
	var errs []string
	for _, t := range targets {
		s := states[t.Cluster]
		if s.err != "" {
			errs = append(errs, fmt.Sprintf("cluster %s: %s", t.Cluster, s.err))
		}
	}
	if len(errs) > 0 {
		if err := a.d.Controller.Pin(r.Context(), name, req.Cluster, ""); err != nil { // nothing changed on any cluster
			a.d.Log.Error("undo pin", "app", name, "error", err)
		}
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("rollback of %s to %s: %s", name, rev, strings.Join(errs, "; ")))
		return
	}
	who := callerOf(r.Context()).Name
	for _, t := range targets {
		s := states[t.Cluster]
		rt := api.RollbackTarget{Cluster: t.Cluster, Digest: s.digest, Sync: api.RollbackPending}
		switch {
		case !s.rendered:
			rt.Message = "the hub has not rendered the pinned revision yet"
		case !s.connected:
			rt.Message = "agent not connected; it receives the pinned bundle when it connects, then run `flotilla app sync`"
		case !s.held:
			rt.Message = "the agent has not confirmed the pinned bundle yet; run `flotilla app sync` once it has"
		default:
			cmd := &apiv1alpha1.Command{Id: newID(), Type: apiv1alpha1.Command_TYPE_SYNC, App: name, InitiatedBy: who}
			if err := a.d.Fleet.SendCommand(t.Cluster, cmd); err != nil {
				rt.Message = err.Error()
			} else {
				rt.Sync = api.RollbackSent
			}
		}
		resp.Targets = append(resp.Targets, rt)
	}
	a.audit(r, "app.rollback", name, fmt.Sprintf("revision=%s cluster=%s", rev, req.Cluster))
	writeJSON(w, http.StatusAccepted, resp)
}

type rollbackState struct {
	rendered  bool // the snapshot shows the pin for this target
	err       string
	digest    string
	connected bool
	held      bool // the agent reports the pinned digest
}

// rollbackStates reports, per wanted cluster, how far the pin got; done is
// true when nothing more can be waited for.
func (a *API) rollbackStates(app, rev string, want map[string]bool) (map[string]rollbackState, bool) {
	status := a.d.Fleet.Status()
	out := map[string]rollbackState{}
	done := true
	for _, as := range a.d.Controller.Snapshot().Apps {
		if as.Name != app {
			continue
		}
		for _, t := range as.Targets {
			if !want[t.Cluster] {
				continue
			}
			s := rollbackState{}
			s.connected, _ = a.d.Fleet.Connected(t.Cluster)
			if t.Pinned == rev {
				s.rendered = true
				s.err, s.digest = t.Error, t.Digest
				s.held = s.err == "" && status[t.Cluster][app].GetDigest() == t.Digest && t.Digest != ""
			}
			if !s.rendered || (s.err == "" && s.connected && !s.held) {
				done = false
			}
			out[t.Cluster] = s
		}
	}
	return out, done
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
	targets, ok := a.appTargets(w, name, req.Cluster)
	if !ok {
		return
	}
	pinned := false
	for _, t := range targets {
		pinned = pinned || t.Pinned != ""
	}
	if !pinned {
		writeError(w, http.StatusConflict, fmt.Sprintf("application %q is not pinned%s", name, onCluster(req.Cluster)))
		return
	}
	if err := a.d.Controller.Pin(r.Context(), name, req.Cluster, ""); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	a.audit(r, "app.unpin", name, "cluster="+req.Cluster)
	writeJSON(w, http.StatusAccepted, api.UnpinResponse{App: name, Cluster: req.Cluster})
}

func onCluster(c string) string {
	if c == "" {
		return ""
	}
	return " on cluster " + c
}
