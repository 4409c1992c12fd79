package httpapi

import (
	"net/http"
)

// diffApp asks each targeted agent (or ?cluster=) for the diff of the
// app's desired objects against its cluster, and waits for the answers.
func (a *API) diffApp(w http.ResponseWriter, r *http.Request) {
	resp, err := a.d.Status.Diff(r.Context(), r.PathValue("name"), r.URL.Query().Get("cluster"), callerOf(r.Context()).Name)
	if err != nil {
		statusError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
