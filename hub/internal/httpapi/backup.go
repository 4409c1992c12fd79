package httpapi

import (
	"fmt"
	"net/http"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// backup streams a consistent snapshot of the hub's store (itself a store
// file: restore by starting a hub with it as <state-dir>/hub.db).
func (a *API) backup(w http.ResponseWriter, r *http.Request) {
	longLived(w)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="flotilla-hub-%s.db"`, a.now().UTC().Format("20060102T150405Z")))
	a.audit(r, "backup", "store", "")
	if err := a.d.Store.Backup(r.Context(), w); err != nil {
		// Headers are gone; the client sees a truncated body and the log says why.
		a.d.Log.Error("backup", "error", err)
	}
}

func (a *API) definitions(w http.ResponseWriter, _ *http.Request) {
	s := a.d.Controller.Snapshot()
	v := api.DefinitionsView{At: s.At, Error: s.Error, Warnings: s.Warnings, Broken: []api.BrokenView{}, Apps: len(s.Apps), Clusters: len(s.Clusters)}
	if v.Warnings == nil {
		v.Warnings = []string{}
	}
	for _, b := range s.Broken {
		v.Broken = append(v.Broken, api.BrokenView{Kind: b.Kind, Name: b.Name, File: b.File, Error: b.Error})
	}
	writeJSON(w, http.StatusOK, v)
}
