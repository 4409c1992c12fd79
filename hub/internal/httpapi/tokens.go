package httpapi

import (
	"fmt"
	"net/http"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var req api.CreateTokenRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Role == "" {
		req.Role = store.RoleReadOnly
	}
	if req.Role != store.RoleReadOnly && req.Role != store.RoleAdmin {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("token role %q: want %q or %q", req.Role, store.RoleReadOnly, store.RoleAdmin))
		return
	}
	if !nameRE.MatchString(req.Name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("token name %q: must be a DNS label (lower case letters, digits and '-', at most 63)", req.Name))
		return
	}
	raw, tok, err := a.d.Store.CreateAPIToken(r.Context(), req.Name, req.Role, a.now())
	if err != nil {
		storeError(w, err, fmt.Sprintf("token %q", req.Name))
		return
	}
	a.audit(r, "token.create", tok.Name, "role="+tok.Role+" id="+tok.ID)
	writeJSON(w, http.StatusCreated, api.CreateTokenResponse{TokenView: tokenView(tok), Token: raw})
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	p, err := pageOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ts, next, err := a.d.Store.ListAPITokens(r.Context(), p)
	if err != nil {
		storeError(w, err, "token")
		return
	}
	out := api.ListResponse[api.TokenView]{Items: []api.TokenView{}, Next: next}
	for _, t := range ts {
		out.Items = append(out.Items, tokenView(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.d.Store.DeleteAPIToken(r.Context(), id); err != nil {
		storeError(w, err, fmt.Sprintf("token %q", id))
		return
	}
	a.audit(r, "token.delete", id, "")
	w.WriteHeader(http.StatusNoContent)
}
