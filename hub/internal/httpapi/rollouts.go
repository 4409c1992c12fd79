package httpapi

import (
	"net/http"
)

func (a *API) rolloutRoutes(m *http.ServeMux, read, deploy func(http.HandlerFunc) http.Handler) {
	m.Handle("GET /api/v1/apps/{name}/rollout", read(a.getRollout))
	m.Handle("POST /api/v1/apps/{name}/rollout/{action}", deploy(a.rolloutAction))
}

func (a *API) getRollout(w http.ResponseWriter, r *http.Request) {
	v, err := a.d.Status.Rollout(r.PathValue("name"))
	if err != nil {
		statusError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// rolloutAction pauses, resumes, approves, aborts or retries an app's
// rollout.
func (a *API) rolloutAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	v, err := a.d.Status.RolloutAction(r.Context(), name, action, callerOf(r.Context()).Name)
	if err != nil {
		statusError(w, err)
		return
	}
	a.audit(r, "app.rollout."+action, name, "to="+v.To)
	writeJSON(w, http.StatusOK, v)
}
