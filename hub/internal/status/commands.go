package status

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/flotilla-cd/flotilla/hub/api"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

type resultKey struct{ cluster, id string }

// NewCommand is a command with a fresh id.
func NewCommand(typ apiv1alpha1.Command_Type, app, who string) *apiv1alpha1.Command {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &apiv1alpha1.Command{Id: hex.EncodeToString(b), Type: typ, App: app, InitiatedBy: who}
}

// Deliver hands cluster's command result r to the call waiting for it, if
// any; a result nobody waits for is dropped. It has the shape of
// agentapi.Hooks.CommandResult.
func (s *Service) Deliver(cluster string, r *apiv1alpha1.CommandResult) {
	k := resultKey{cluster, r.GetId()}
	s.mu.Lock()
	ch := s.waiting[k]
	delete(s.waiting, k)
	s.mu.Unlock()
	if ch != nil {
		ch <- r // buffered 1, one delivery per key
	}
}

// Call sends cmd to cluster's agent and waits for its result until ctx ends.
func (s *Service) Call(ctx context.Context, cluster string, cmd *apiv1alpha1.Command) (*apiv1alpha1.CommandResult, error) {
	ch := make(chan *apiv1alpha1.CommandResult, 1)
	k := resultKey{cluster, cmd.GetId()}
	s.mu.Lock()
	s.waiting[k] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.waiting[k] == ch {
			delete(s.waiting, k)
		}
		s.mu.Unlock()
	}()
	if err := s.d.Fleet.SendCommand(cluster, cmd); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster %s: no answer from the agent: %w", cluster, context.Cause(ctx))
	}
}

// Command sends a command of type typ for the app to its targeted agents
// (on cluster only, when not "") without waiting for them. It fails with a
// Conflict *Error when no agent took it.
func (s *Service) Command(typ apiv1alpha1.Command_Type, app, cluster, who string, prune bool) (api.SyncResponse, error) {
	targets, err := s.Targets(app, cluster)
	if err != nil {
		return api.SyncResponse{}, err
	}
	resp := api.SyncResponse{Sent: []string{}}
	for _, t := range targets {
		cmd := NewCommand(typ, app, who)
		cmd.Prune = prune
		if typ == apiv1alpha1.Command_TYPE_SYNC && t.ManualSyncDenied {
			// A sync window of the app's project holds manual syncs too.
			if resp.Failed == nil {
				resp.Failed = map[string]string{}
			}
			resp.Failed[t.Cluster] = t.SyncWindow
			continue
		}
		if err := s.d.Fleet.SendCommand(t.Cluster, cmd); err != nil {
			if resp.Failed == nil {
				resp.Failed = map[string]string{}
			}
			resp.Failed[t.Cluster] = err.Error()
			continue
		}
		resp.Sent = append(resp.Sent, t.Cluster)
	}
	if len(resp.Sent) == 0 {
		var why []string
		for _, t := range targets {
			why = append(why, fmt.Sprintf("cluster %s: %s", t.Cluster, resp.Failed[t.Cluster]))
		}
		return resp, errorf(Conflict, "no agent of application %q took the command: %s", app, strings.Join(why, "; "))
	}
	return resp, nil
}

// Diff asks each targeted agent (on cluster only, when not "") for the
// diff of the app's desired objects against its cluster, and waits for
// the answers until the command timeout.
func (s *Service) Diff(ctx context.Context, app, cluster, who string) (api.DiffResponse, error) {
	targets, err := s.Targets(app, cluster)
	if err != nil {
		return api.DiffResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.d.CommandTimeout)
	defer cancel()
	resp := api.DiffResponse{App: app, Clusters: make([]api.ClusterDiff, len(targets))}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cd := api.ClusterDiff{Cluster: t.Cluster}
			res, err := s.Call(ctx, t.Cluster, NewCommand(apiv1alpha1.Command_TYPE_DIFF, app, who))
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
	return resp, nil
}
