package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

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
	switch {
	case req.Role != store.RoleReadOnly && req.Role != store.RoleAdmin && req.Role != store.RoleDeployer:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("token role %q: want %q, %q or %q", req.Role, store.RoleReadOnly, store.RoleDeployer, store.RoleAdmin))
		return
	case req.Role == store.RoleDeployer && len(req.Projects) == 0:
		writeError(w, http.StatusBadRequest, "a deployer token needs the project(s) it may deploy (--project)")
		return
	case req.Role != store.RoleDeployer && len(req.Projects) > 0:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("a %s token covers every project; --project is for deployer tokens", req.Role))
		return
	}
	for _, p := range req.Projects {
		if !nameRE.MatchString(p) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("project %q: must be a DNS label", p))
			return
		}
	}
	ttl := a.d.APITokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("token ttl %q: want a positive duration such as 720h", req.TTL))
			return
		}
		ttl = d
	}
	if ttl > a.d.APITokenMaxTTL {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("token ttl %s: longer than this hub's maximum %s", ttl, a.d.APITokenMaxTTL))
		return
	}
	if !nameRE.MatchString(req.Name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("token name %q: must be a DNS label (lower case letters, digits and '-', at most 63)", req.Name))
		return
	}
	now := a.now()
	spec := store.APIToken{Name: req.Name, Role: req.Role, Projects: req.Projects, ExpiresAt: now.Add(ttl)}
	raw, tok, err := a.d.Store.IssueAPIToken(r.Context(), spec, now)
	if err != nil {
		storeError(w, err, fmt.Sprintf("token %q", req.Name))
		return
	}
	a.audit(r, "token.create", tok.Name, fmt.Sprintf("role=%s projects=%s expires=%s id=%s", tok.Role, strings.Join(tok.Projects, ","), tok.ExpiresAt.Format(time.RFC3339), tok.ID))
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
