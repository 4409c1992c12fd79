package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// renderedManifests answers what the hub rendered for the app, per
// targeted cluster (?cluster= for one), a Secret's values redacted.
func (a *API) renderedManifests(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	targets, ok := a.appTargets(w, name, r.URL.Query().Get("cluster"))
	if !ok {
		return
	}
	resp := api.RenderedManifestsResponse{App: name}
	for _, t := range targets {
		rm := api.RenderedManifests{Cluster: t.Cluster, Objects: []json.RawMessage{}}
		b := a.d.Fleet.DesiredOf(t.Cluster)[name]
		if b == nil {
			rm.Error = "nothing rendered for this cluster yet"
			resp.Clusters = append(resp.Clusters, rm)
			continue
		}
		rm.Revision, rm.Digest = b.GetRevision(), b.GetDigest()
		objs, err := manifest.DecodeObjects(b)
		if err != nil {
			rm.Error = err.Error()
		}
		for _, o := range objs {
			raw, err := json.Marshal(manifest.Redact(o).Object)
			if err != nil {
				rm.Error = err.Error()
				break
			}
			rm.Objects = append(rm.Objects, raw)
		}
		resp.Clusters = append(resp.Clusters, rm)
	}
	writeJSON(w, http.StatusOK, resp)
}
