package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"

	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// AppView is an application with its state on every targeted cluster.
type AppView struct {
	Name     string           `json:"name"`
	File     string           `json:"file,omitempty"`
	Revision string           `json:"revision,omitempty"`
	Error    string           `json:"error,omitempty"`
	Spec     any              `json:"spec,omitempty"`
	Clusters []AppClusterView `json:"clusters"`
	Sync     string           `json:"sync"`
	Health   string           `json:"health"`
}

// AppClusterView is one (app, cluster).
type AppClusterView struct {
	Cluster string `json:"cluster"`
	// Desired is what the hub computed.
	Digest   string `json:"digest,omitempty"`
	Revision string `json:"revision,omitempty"`
	Error    string `json:"error,omitempty"`
	Pinned   string `json:"pinned,omitempty"`
	// Observed is what the agent reported.
	Connected      bool                        `json:"connected"`
	Sync           string                      `json:"sync"`
	Health         string                      `json:"health"`
	Message        string                      `json:"message,omitempty"`
	ObservedDigest string                      `json:"observedDigest,omitempty"`
	ObservedRev    string                      `json:"observedRevision,omitempty"`
	Objects        []*apiv1alpha1.ObjectStatus `json:"objects,omitempty"`
	LastOperation  *apiv1alpha1.Operation      `json:"lastOperation,omitempty"`
}

// SyncName is the API's spelling of a sync status.
func SyncName(s apiv1alpha1.SyncStatus) string {
	switch s {
	case apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED:
		return "Synced"
	case apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC:
		return "OutOfSync"
	}
	return "Unknown"
}

// HealthName is the API's spelling of a health status.
func HealthName(h apiv1alpha1.HealthStatus) string {
	switch h {
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY:
		return "Healthy"
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING:
		return "Progressing"
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED:
		return "Degraded"
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING:
		return "Missing"
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_SUSPENDED:
		return "Suspended"
	}
	return "Unknown"
}

var healthRank = map[string]int{"Healthy": 0, "Suspended": 1, "Progressing": 2, "Unknown": 3, "Missing": 4, "Degraded": 5}

// Views joins the controller's snapshot with the statuses agents reported.
// An (app, cluster) is Synced only when the agent reports Synced for the
// digest the hub wants.
func Views(snap *controller.Snapshot, fl *fleet.Fleet, withObjects bool) []AppView {
	status := fl.Status()
	out := make([]AppView, 0, len(snap.Apps))
	for _, as := range snap.Apps {
		v := AppView{Name: as.Name, File: as.File, Revision: as.Revision, Error: as.Error, Clusters: []AppClusterView{}, Sync: "Synced", Health: "Healthy"}
		if withObjects {
			v.Spec = as.Spec
		}
		for _, t := range as.Targets {
			cv := AppClusterView{Cluster: t.Cluster, Digest: t.Digest, Revision: t.Revision, Error: t.Error, Pinned: t.Pinned, Sync: "Unknown", Health: "Unknown"}
			cv.Connected, _ = fl.Connected(t.Cluster)
			if st := status[t.Cluster][as.Name]; st != nil {
				cv.ObservedDigest, cv.ObservedRev, cv.Message = st.GetDigest(), st.GetRevision(), st.GetMessage()
				cv.Health = HealthName(st.GetHealth())
				cv.LastOperation = st.GetLastOperation()
				if st.GetDigest() == t.Digest && t.Digest != "" {
					cv.Sync = SyncName(st.GetSync())
				} else {
					cv.Sync = "OutOfSync" // the agent has not applied what the hub wants yet
				}
				if withObjects {
					cv.Objects = st.GetObjects()
				}
			}
			if t.Error != "" && cv.Sync == "Synced" {
				cv.Sync = "OutOfSync" // git moved but the new state cannot be rendered
			}
			if cv.Sync != "Synced" {
				v.Sync = worstSync(v.Sync, cv.Sync)
			}
			if healthRank[cv.Health] > healthRank[v.Health] {
				v.Health = cv.Health
			}
			v.Clusters = append(v.Clusters, cv)
		}
		if len(as.Targets) == 0 {
			v.Sync, v.Health = "Unknown", "Unknown"
		}
		if as.Error != "" && v.Sync == "Synced" {
			v.Sync = "Unknown"
		}
		sort.Slice(v.Clusters, func(i, j int) bool { return v.Clusters[i].Cluster < v.Clusters[j].Cluster })
		out = append(out, v)
	}
	return out
}

func worstSync(a, b string) string {
	if a == "OutOfSync" || b == "OutOfSync" {
		return "OutOfSync"
	}
	return "Unknown"
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) {
	views := Views(a.d.Controller.Snapshot(), a.d.Fleet, false)
	p := pageOf(r)
	start := 0
	if p.After != "" {
		start = sort.Search(len(views), func(i int) bool { return views[i].Name > p.After })
	}
	limit := p.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	end := min(start+limit, len(views))
	resp := ListResponse[AppView]{Items: views[start:end]}
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

// SyncRequest asks agents to apply an app now.
type SyncRequest struct {
	// Cluster limits the sync to one cluster; empty syncs all targets.
	Cluster string `json:"cluster,omitempty"`
	Prune   bool   `json:"prune,omitempty"`
}

// SyncResponse lists where the sync was sent.
type SyncResponse struct {
	Sent   []string          `json:"sent"`
	Failed map[string]string `json:"failed,omitempty"`
}

func (a *API) syncApp(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req SyncRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	var targets []string
	for _, as := range a.d.Controller.Snapshot().Apps {
		if as.Name != name {
			continue
		}
		for _, t := range as.Targets {
			if req.Cluster == "" || req.Cluster == t.Cluster {
				targets = append(targets, t.Cluster)
			}
		}
		if len(targets) == 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("application %q does not target cluster %q", name, req.Cluster))
			return
		}
	}
	if targets == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("application %q not found", name))
		return
	}
	resp := SyncResponse{Sent: []string{}}
	who := callerOf(r.Context()).Name
	for _, c := range targets {
		cmd := &apiv1alpha1.Command{Id: newID(), Type: apiv1alpha1.Command_TYPE_SYNC, App: name, InitiatedBy: who, Prune: req.Prune}
		if err := a.d.Fleet.SendCommand(c, cmd); err != nil {
			if resp.Failed == nil {
				resp.Failed = map[string]string{}
			}
			resp.Failed[c] = err.Error()
			continue
		}
		resp.Sent = append(resp.Sent, c)
	}
	a.audit(r, "app.sync", name, fmt.Sprintf("clusters=%v", resp.Sent))
	code := http.StatusAccepted
	if len(resp.Sent) == 0 {
		code = http.StatusConflict
	}
	writeJSON(w, code, resp)
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	for _, u := range a.d.Git.Repos() {
		a.d.Git.Refresh(u)
	}
	a.d.Controller.Trigger()
	a.audit(r, "refresh", "*", "")
	w.WriteHeader(http.StatusAccepted)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	es, next, err := a.d.Store.ListAudit(r.Context(), pageOf(r))
	if err != nil {
		storeError(w, err, "audit entry")
		return
	}
	writeJSON(w, http.StatusOK, ListResponse[any]{Items: toAny(es), Next: next})
}

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i := range xs {
		out[i] = xs[i]
	}
	return out
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
