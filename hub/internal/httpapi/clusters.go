package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// checkLabels refuses labels that are not Kubernetes label keys and values
// (selectors match them as such). An empty value removes a label when
// removable is set; its key is not checked, so a bad label stored before
// can be removed.
func checkLabels(labels map[string]string, removable bool) error {
	for k, v := range labels {
		if v == "" && removable {
			continue
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("label %s=%q: %s", k, v, strings.Join(errs, "; "))
		}
	}
	return nil
}

func (a *API) view(c store.Cluster) api.ClusterView {
	conn, seen := a.d.Fleet.Connected(c.Name)
	if seen.Before(c.LastSeen) {
		seen = c.LastSeen
	}
	return api.ClusterView{
		Name: c.Name, Labels: c.Labels, Connected: conn, LastSeen: seen, AgentVersion: c.AgentVersion,
		Enrolled: c.CertSerial != "" && !c.Revoked, CertNotAfter: c.CertNotAfter, CreatedAt: c.CreatedAt,
	}
}

func (a *API) listClusters(w http.ResponseWriter, r *http.Request) {
	p, err := pageOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cs, next, err := a.d.Store.ListClusters(r.Context(), p)
	if err != nil {
		storeError(w, err, "cluster")
		return
	}
	out := api.ListResponse[api.ClusterView]{Items: []api.ClusterView{}, Next: next}
	for _, c := range cs {
		out.Items = append(out.Items, a.view(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getCluster(w http.ResponseWriter, r *http.Request) {
	c, err := a.d.Store.GetCluster(r.Context(), r.PathValue("name"))
	if err != nil {
		storeError(w, err, fmt.Sprintf("cluster %q", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, a.view(c))
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func (a *API) addCluster(w http.ResponseWriter, r *http.Request) {
	var req api.AddClusterRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !nameRE.MatchString(req.Name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cluster name %q: must be a DNS label (lower case letters, digits and '-', at most 63)", req.Name))
		return
	}
	if err := checkLabels(req.Labels, false); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	err := a.d.Store.CreateCluster(r.Context(), store.Cluster{Name: req.Name, Labels: req.Labels, CreatedAt: a.now()})
	if err != nil {
		storeError(w, err, fmt.Sprintf("cluster %q", req.Name))
		return
	}
	a.audit(r, "cluster.add", req.Name, labelString(req.Labels))
	a.d.Controller.Trigger()
	a.writeJoin(w, r, req.Name, http.StatusCreated)
}

func (a *API) newToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.d.Store.GetCluster(r.Context(), name); err != nil {
		storeError(w, err, fmt.Sprintf("cluster %q", name))
		return
	}
	a.audit(r, "cluster.token", name, "")
	a.writeJoin(w, r, name, http.StatusOK)
}

func (a *API) writeJoin(w http.ResponseWriter, r *http.Request, name string, code int) {
	now := a.now()
	tok, err := a.d.Store.CreateJoinToken(r.Context(), name, a.d.TokenTTL, now)
	if err != nil {
		storeError(w, err, fmt.Sprintf("cluster %q", name))
		return
	}
	addr, hash := a.d.JoinInfo()
	writeJSON(w, code, api.JoinResponse{
		Cluster: name, Token: tok, ExpiresAt: now.Add(a.d.TokenTTL), HubAddr: addr, CAHash: hash,
		Command: fmt.Sprintf("flotilla-agent --hub %s --cluster %s --join-token %s --ca-hash %s", addr, name, tok, hash),
	})
}

func (a *API) removeCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := a.d.Store.DeleteCluster(r.Context(), name); err != nil {
		storeError(w, err, fmt.Sprintf("cluster %q", name))
		return
	}
	a.d.Fleet.Forget(name) // closes its open stream at once
	a.audit(r, "cluster.remove", name, "")
	a.d.Controller.Trigger()
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) labelCluster(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.LabelRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkLabels(req.Labels, true); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var out store.Cluster
	err := a.d.Store.UpdateCluster(r.Context(), name, func(c *store.Cluster) error {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for k, v := range req.Labels {
			if v == "" {
				delete(c.Labels, k)
			} else {
				c.Labels[k] = v
			}
		}
		out = *c
		out.Labels = maps.Clone(c.Labels)
		return nil
	})
	if err != nil {
		storeError(w, err, fmt.Sprintf("cluster %q", name))
		return
	}
	a.audit(r, "cluster.label", name, labelString(req.Labels))
	a.d.Controller.Trigger()
	writeJSON(w, http.StatusOK, a.view(out))
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}
