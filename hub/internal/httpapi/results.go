package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/flotilla-cd/flotilla/hub/api"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Results routes agents' command results to the requests waiting for them.
// It is safe for concurrent use. A result nobody waits for is dropped.
type Results struct {
	mu      sync.Mutex
	waiting map[resultKey]chan *apiv1alpha1.CommandResult
}

type resultKey struct{ cluster, id string }

// NewResults returns an empty registry.
func NewResults() *Results {
	return &Results{waiting: map[resultKey]chan *apiv1alpha1.CommandResult{}}
}

// Deliver hands cluster's result r to its waiter, if any. It has the shape
// of agentapi.Hooks.CommandResult.
func (rs *Results) Deliver(cluster string, r *apiv1alpha1.CommandResult) {
	rs.mu.Lock()
	ch := rs.waiting[resultKey{cluster, r.GetId()}]
	delete(rs.waiting, resultKey{cluster, r.GetId()})
	rs.mu.Unlock()
	if ch != nil {
		ch <- r // buffered 1, one delivery per key
	}
}

// expect registers interest in the result of command id on cluster; call
// it before sending the command. cancel forgets it.
func (rs *Results) expect(cluster, id string) (<-chan *apiv1alpha1.CommandResult, func()) {
	ch := make(chan *apiv1alpha1.CommandResult, 1)
	k := resultKey{cluster, id}
	rs.mu.Lock()
	rs.waiting[k] = ch
	rs.mu.Unlock()
	return ch, func() {
		rs.mu.Lock()
		if rs.waiting[k] == ch {
			delete(rs.waiting, k)
		}
		rs.mu.Unlock()
	}
}

// Call sends cmd to cluster's agent and waits for its result until ctx ends.
func (a *API) Call(ctx context.Context, cluster string, cmd *apiv1alpha1.Command) (*apiv1alpha1.CommandResult, error) {
	ch, cancel := a.d.Results.expect(cluster, cmd.GetId())
	defer cancel()
	if err := a.d.Fleet.SendCommand(cluster, cmd); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster %s: no answer from the agent: %w", cluster, context.Cause(ctx))
	}
}

// diffApp asks each targeted agent (or ?cluster=) for the diff of the
// app's desired objects against its cluster, and waits for the answers.
func (a *API) diffApp(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	targets, ok := a.appTargets(w, name, r.URL.Query().Get("cluster"))
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.d.CommandTimeout)
	defer cancel()
	resp := api.DiffResponse{App: name, Clusters: make([]api.ClusterDiff, len(targets))}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cd := api.ClusterDiff{Cluster: t.Cluster}
			res, err := a.Call(ctx, t.Cluster, &apiv1alpha1.Command{Id: newID(), Type: apiv1alpha1.Command_TYPE_DIFF, App: name, InitiatedBy: callerOf(r.Context()).Name})
			switch {
			case err != nil:
				cd.Error = err.Error()
			case !res.GetOk():
				cd.Error = res.GetMessage()
			default:
				cd.OK, cd.Summary, cd.Diff = true, res.GetMessage(), res.GetDiff()
			}
			resp.Clusters[i] = cd
		}()
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, resp)
}
