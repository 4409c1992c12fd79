package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Live view: what an app's agents read from their clusters on demand, over
// their own streams (package liveview). Reads need any role, actions the
// right to deploy the app (admin, or a deployer of its project) and are
// audited.

func (a *API) liveRoutes(deploy func(http.HandlerFunc) http.Handler) {
	m := a.mux
	read := func(h http.HandlerFunc) http.Handler { return a.auth(permRead)(a.liveReader(h)) }
	m.Handle("GET /api/v1/apps/{name}/resources", read(a.appResources))
	m.Handle("GET /api/v1/apps/{name}/manifests", read(a.renderedManifests))
	m.Handle("GET /api/v1/apps/{name}/live/manifest", read(a.liveManifest))
	m.Handle("GET /api/v1/apps/{name}/live/events", read(a.liveEvents))
	m.Handle("GET /api/v1/apps/{name}/logs", read(a.appLogs))
	m.Handle("POST /api/v1/apps/{name}/actions", deploy(a.appAction))
}

// liveReader lets through a caller who may read the app of the path's
// {name} live: any role, but a deployer only in its projects. What the
// cluster holds (logs, live manifests) goes to no one outside the app's
// project.
func (a *API) liveReader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		project, found := a.appProject(name)
		if !found {
			writeError(w, http.StatusNotFound, fmt.Sprintf("application %q not found", name))
			return
		}
		if p := callerOf(r.Context()); p.Role == store.RoleDeployer && !p.CanDeploy(project) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s is %s; application %q is in project %q", p.Name, roleText(p), name, project))
			return
		}
		h(w, r)
	}
}

// appTargets returns the app's targets, limited to cluster when it is not
// "". It writes the error and returns ok=false when the app does not exist
// or does not target the cluster.
func (a *API) appTargets(w http.ResponseWriter, name, cluster string) ([]controller.TargetState, bool) {
	ts, err := a.d.Status.Targets(name, cluster)
	if err != nil {
		statusError(w, err)
		return nil, false
	}
	return ts, true
}

// liveCluster picks the one cluster of app a live request goes to: the
// ?cluster= asked for, or the only one the app targets. It writes the
// error and returns ok=false otherwise.
func (a *API) liveCluster(w http.ResponseWriter, app, cluster string) (string, bool) {
	targets, ok := a.appTargets(w, app, cluster)
	if !ok {
		return "", false
	}
	if len(targets) > 1 {
		names := make([]string, len(targets))
		for i, t := range targets {
			names[i] = t.Cluster
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("application %q targets clusters %s: name one with cluster", app, strings.Join(names, ", ")))
		return "", false
	}
	return targets[0].Cluster, true
}

// liveStatus is the HTTP status of a live request's error.
func liveStatus(err error) int {
	var ae *liveview.AgentError
	switch {
	case errors.As(err, &ae):
		switch ae.Code {
		case apiv1alpha1.LiveResponse_CODE_NOT_FOUND:
			return http.StatusNotFound
		case apiv1alpha1.LiveResponse_CODE_NOT_OWNED:
			return http.StatusForbidden
		case apiv1alpha1.LiveResponse_CODE_INVALID:
			return http.StatusBadRequest
		case apiv1alpha1.LiveResponse_CODE_BUSY:
			return http.StatusTooManyRequests
		case apiv1alpha1.LiveResponse_CODE_DEADLINE:
			return http.StatusGatewayTimeout
		default:
			return http.StatusBadGateway
		}
	case errors.Is(err, liveview.ErrNotConnected):
		return http.StatusServiceUnavailable
	case errors.Is(err, liveview.ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, liveview.ErrBusy):
		return http.StatusTooManyRequests
	case errors.Is(err, liveview.ErrDeadline):
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

// liveError writes the error of a live request (the broker's errors name
// the cluster).
func liveError(w http.ResponseWriter, err error) {
	writeError(w, liveStatus(err), err.Error())
}

// objectQuery reads ?group=&version=&kind=&namespace=&name=.
func objectQuery(r *http.Request) *apiv1alpha1.ObjectRef {
	q := r.URL.Query()
	return &apiv1alpha1.ObjectRef{Group: q.Get("group"), Version: q.Get("version"), Kind: q.Get("kind"), Namespace: q.Get("namespace"), Name: q.Get("name")}
}

func (a *API) appResources(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	targets, ok := a.appTargets(w, name, r.URL.Query().Get("cluster"))
	if !ok {
		return
	}
	resp := api.ResourcesResponse{App: name, Clusters: make([]api.ResourceTree, len(targets))}
	done := make(chan struct{}, len(targets))
	for i, t := range targets {
		go func() {
			defer func() { done <- struct{}{} }()
			tree := api.ResourceTree{Cluster: t.Cluster, Nodes: []api.ResourceNode{}}
			res, err := a.d.Live.Do(r.Context(), t.Cluster, &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_TREE, App: name, InitiatedBy: callerOf(r.Context()).Name})
			if err != nil {
				tree.Error = err.Error()
			} else {
				for _, n := range res.GetNodes() {
					tree.Nodes = append(tree.Nodes, resourceNode(n))
				}
			}
			resp.Clusters[i] = tree
		}()
	}
	for range targets {
		<-done
	}
	writeJSON(w, http.StatusOK, resp)
}

func objectRef(r *apiv1alpha1.ObjectRef) api.ObjectRef {
	return api.ObjectRef{Group: r.GetGroup(), Version: r.GetVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName()}
}

func resourceNode(n *apiv1alpha1.LiveNode) api.ResourceNode {
	out := api.ResourceNode{
		ObjectRef: objectRef(n.GetRef()), UID: n.GetUid(), Parents: n.GetParentUids(),
		Health: healthName(n.GetHealth()), Message: n.GetMessage(), InApp: n.GetInApp(), Containers: n.GetContainers(),
	}
	if n.GetCreated() != nil {
		t := n.GetCreated().AsTime()
		out.Created = &t
	}
	return out
}

// healthName is the API's name of a health value ("Healthy").
func healthName(h apiv1alpha1.HealthStatus) string {
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
	default:
		return "Unknown"
	}
}

func (a *API) liveManifest(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cluster, ok := a.liveCluster(w, name, r.URL.Query().Get("cluster"))
	if !ok {
		return
	}
	res, err := a.d.Live.Do(r.Context(), cluster, &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_MANIFEST, App: name, Object: objectQuery(r), InitiatedBy: callerOf(r.Context()).Name})
	if err != nil {
		liveError(w, err)
		return
	}
	if !json.Valid(res.GetManifestJson()) {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("cluster %s: the agent's manifest is not JSON", cluster))
		return
	}
	writeJSON(w, http.StatusOK, api.LiveManifestResponse{App: name, Cluster: cluster, Object: res.GetManifestJson()})
}

func (a *API) liveEvents(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cluster, ok := a.liveCluster(w, name, r.URL.Query().Get("cluster"))
	if !ok {
		return
	}
	res, err := a.d.Live.Do(r.Context(), cluster, &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_EVENTS, App: name, Object: objectQuery(r), InitiatedBy: callerOf(r.Context()).Name})
	if err != nil {
		liveError(w, err)
		return
	}
	resp := api.AppEventsResponse{App: name, Cluster: cluster, Events: []api.Event{}}
	for _, e := range res.GetEvents() {
		ev := api.Event{Object: objectRef(e.GetObject()), Type: e.GetType(), Reason: e.GetReason(), Message: e.GetMessage(), Count: e.GetCount(), Source: e.GetSource()}
		if e.GetLastSeen() != nil {
			t := e.GetLastSeen().AsTime()
			ev.LastSeen = &t
		}
		resp.Events = append(resp.Events, ev)
	}
	writeJSON(w, http.StatusOK, resp)
}

// appLogs streams a pod's log as text/plain: ?kind=Pod&name=P (or a
// workload: ?group=apps&kind=Deployment&name=D), &container=, &tail=N,
// &since=<duration>, &follow=true.
func (a *API) appLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	cluster, ok := a.liveCluster(w, name, q.Get("cluster"))
	if !ok {
		return
	}
	opts := &apiv1alpha1.LogOptions{Container: q.Get("container"), Follow: q.Get("follow") == "true"}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("tail %q: want a number of lines", t))
			return
		}
		opts.TailLines = n
	}
	if s := q.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q: want a duration such as 10m", s))
			return
		}
		opts.SinceSeconds = max(int64(d.Seconds()), 1)
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported by this connection")
		return
	}
	if opts.Follow {
		longLived(w)
	}
	started := false
	err := a.d.Live.Logs(r.Context(), cluster, &apiv1alpha1.LiveRequest{App: name, Object: objectQuery(r), Logs: opts, InitiatedBy: callerOf(r.Context()).Name}, func(f *apiv1alpha1.LiveResponse) error {
		if !started {
			h := w.Header()
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			h.Set(api.LogPodHeader, f.GetPod())
			h.Set(api.LogContainerHeader, f.GetContainer())
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if _, err := w.Write(f.GetLogData()); err != nil {
			return err
		}
		fl.Flush()
		return nil
	})
	switch {
	case err == nil && !started:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
	case err != nil && !started:
		liveError(w, err)
	case err != nil && r.Context().Err() == nil:
		// The answer has begun: say why it ends in the log itself.
		_, _ = fmt.Fprintf(w, "\n[flotilla: log ended: %v]\n", err)
	}
}

func (a *API) appAction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.ActionRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch req.Action {
	case api.ActionRestart, api.ActionDelete, api.ActionRun:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("action %q: want %s, %s or %s", req.Action, api.ActionRestart, api.ActionDelete, api.ActionRun))
		return
	}
	cluster, ok := a.liveCluster(w, name, req.Cluster)
	if !ok {
		return
	}
	o := req.Object
	ref := &apiv1alpha1.ObjectRef{Group: o.Group, Version: o.Version, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
	target := fmt.Sprintf("%s cluster=%s %s/%s", name, cluster, o.Kind, o.Name)
	if o.Namespace != "" {
		target = fmt.Sprintf("%s cluster=%s %s %s/%s", name, cluster, o.Kind, o.Namespace, o.Name)
	}
	res, err := a.d.Live.Do(r.Context(), cluster, &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_ACTION, App: name, Object: ref, Action: req.Action, InitiatedBy: callerOf(r.Context()).Name})
	if err != nil {
		a.audit(r, "app.action."+req.Action, target, "refused: "+err.Error())
		liveError(w, err)
		return
	}
	a.audit(r, "app.action."+req.Action, target, res.GetMessage())
	writeJSON(w, http.StatusOK, api.ActionResponse{Cluster: cluster, Message: res.GetMessage()})
}
