package httpapi

import (
	"fmt"
	"net/http"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func (a *API) listApps(w http.ResponseWriter, r *http.Request) {
	p, err := pageOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	views, next := a.d.Status.ViewsPage(p.After, limit, false)
	resp := api.ListResponse[api.AppView]{Items: views, Next: next}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := a.d.Status.View(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("application %q not found", name))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) syncApp(w http.ResponseWriter, r *http.Request) {
	a.command(w, r, apiv1alpha1.Command_TYPE_SYNC, "app.sync")
}

// refreshApp makes the hub poll the app's repositories (git, Helm and its
// kustomizations' remote bases) and
// reconcile now,
// and asks every targeted agent to re-read live state.
func (a *API) refreshApp(w http.ResponseWriter, r *http.Request) {
	for _, as := range a.d.Controller.Snapshot().Apps {
		if as.Name == r.PathValue("name") && a.d.Git != nil {
			for _, src := range as.Spec.AllSources() {
				if !src.IsChart() {
					a.refreshGit(src.RepoURL, gitsource.Push{})
				}
			}
			for _, u := range a.d.Controller.RemoteBaseRepos(as.Name) {
				a.d.Git.Refresh(u) // kustomize remote bases
			}
			a.d.Controller.RefreshCharts(as.Spec.AllSources())
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
	resp, err := a.d.Status.Command(typ, name, req.Cluster, callerOf(r.Context()).Name, req.Prune)
	if err != nil {
		statusError(w, err)
		return
	}
	a.audit(r, action, name, fmt.Sprintf("clusters=%v prune=%v", resp.Sent, req.Prune))
	writeJSON(w, http.StatusAccepted, resp)
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	if a.d.Git != nil {
		for _, u := range a.d.Git.Repos() {
			a.refreshGit(u, gitsource.Push{})
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
