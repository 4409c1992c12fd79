package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func (a *API) listApps(w http.ResponseWriter, r *http.Request) {
	p, err := pageOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	views := Views(a.d.Controller.Snapshot(), a.d.Fleet, false)
	start := 0
	if p.After != "" {
		start = sort.Search(len(views), func(i int) bool { return views[i].Name > p.After })
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	end := min(start+limit, len(views))
	resp := api.ListResponse[api.AppView]{Items: views[start:end]}
	if end < len(views) {
		resp.Next = views[end-1].Name
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, v := range Views(a.d.Controller.Snapshot(), a.d.Fleet, true) {
		if v.Name == name {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("application %q not found", name))
}

// appTargets returns the app's targets, limited to cluster when it is not
// "". It writes a 404 and returns ok=false when the app does not exist or
// does not target the cluster.
func (a *API) appTargets(w http.ResponseWriter, name, cluster string) ([]controller.TargetState, bool) {
	for _, as := range a.d.Controller.Snapshot().Apps {
		if as.Name != name {
			continue
		}
		var out []controller.TargetState
		for _, t := range as.Targets {
			if cluster == "" || cluster == t.Cluster {
				out = append(out, t)
			}
		}
		if len(out) == 0 {
			if cluster == "" {
				writeError(w, http.StatusNotFound, fmt.Sprintf("application %q targets no cluster", name))
			} else {
				writeError(w, http.StatusNotFound, fmt.Sprintf("application %q does not target cluster %q", name, cluster))
			}
			return nil, false
		}
		return out, true
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("application %q not found", name))
	return nil, false
}

func (a *API) syncApp(w http.ResponseWriter, r *http.Request) {
	a.command(w, r, apiv1alpha1.Command_TYPE_SYNC, "app.sync")
}

// refreshApp makes the hub poll the app's repositories and reconcile now,
// and asks every targeted agent to re-read live state.
func (a *API) refreshApp(w http.ResponseWriter, r *http.Request) {
	for _, as := range a.d.Controller.Snapshot().Apps {
		if as.Name == r.PathValue("name") && a.d.Git != nil {
			for _, src := range as.Spec.AllSources() {
				a.d.Git.Refresh(src.RepoURL)
			}
		}
	}
	a.d.Controller.Trigger()
	a.command(w, r, apiv1alpha1.Command_TYPE_REFRESH, "app.refresh")
}

// command sends a command of type typ for the app to its targeted
// (connected) agents without waiting for them.
func (a *API) command(w http.ResponseWriter, r *http.Request, typ apiv1alpha1.Command_Type, action string) {
	name := r.PathValue("name")
	var req api.SyncRequest
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
	resp := api.SyncResponse{Sent: []string{}}
	who := callerOf(r.Context()).Name
	for _, t := range targets {
		cmd := &apiv1alpha1.Command{Id: newID(), Type: typ, App: name, InitiatedBy: who, Prune: req.Prune}
		if err := a.d.Fleet.SendCommand(t.Cluster, cmd); err != nil {
			if resp.Failed == nil {
				resp.Failed = map[string]string{}
			}
			resp.Failed[t.Cluster] = err.Error()
			continue
		}
		resp.Sent = append(resp.Sent, t.Cluster)
	}
	if len(resp.Sent) == 0 {
		var why []string
		for _, t := range targets {
			why = append(why, fmt.Sprintf("cluster %s: %s", t.Cluster, resp.Failed[t.Cluster]))
		}
		writeError(w, http.StatusConflict, fmt.Sprintf("no agent of application %q took the command: %s", name, strings.Join(why, "; ")))
		return
	}
	a.audit(r, action, name, fmt.Sprintf("clusters=%v prune=%v", resp.Sent, req.Prune))
	writeJSON(w, http.StatusAccepted, resp)
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	if a.d.Git != nil {
		for _, u := range a.d.Git.Repos() {
			a.d.Git.Refresh(u)
		}
	}
	a.d.Controller.Trigger()
	a.audit(r, "refresh", "*", "")
	w.WriteHeader(http.StatusAccepted)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	p, err := pageOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	es, next, err := a.d.Store.ListAudit(r.Context(), p)
	if err != nil {
		storeError(w, err, "audit entry")
		return
	}
	out := api.ListResponse[api.AuditEntry]{Items: make([]api.AuditEntry, len(es)), Next: next}
	for i, e := range es {
		out.Items[i] = auditView(e)
	}
	writeJSON(w, http.StatusOK, out)
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
