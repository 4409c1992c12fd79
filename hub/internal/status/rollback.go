package status

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Rollback pins app (on req.Cluster, or every cluster) to an earlier
// revision, req.Revision or the one of history entry req.HistoryID, and
// suspends its auto-sync until Unpin, as Argo CD does (see the package
// documentation). It waits, until the command timeout, for the controller
// to render the pinned revision and for each connected agent to report
// holding its bundle, then sends those agents one SYNC command; the answer
// says per cluster whether it was sent and, if not, why. When the pinned
// revision cannot be rendered for a cluster, the pin is undone and the
// error is Unprocessable. A target whose sync window holds manual syncs
// refuses the whole rollback (Conflict, naming the window), as Sync does.
// who is the caller, recorded in the operation.
func (s *Service) Rollback(ctx context.Context, app string, req api.RollbackRequest, who string) (api.RollbackResponse, error) {
	if (req.Revision == "") == (req.HistoryID == 0) {
		return api.RollbackResponse{}, errorf(Invalid, "rollback needs exactly one of revision or historyId")
	}
	rev := req.Revision
	if req.HistoryID != 0 {
		e, err := s.d.Store.GetHistory(ctx, req.HistoryID)
		if errors.Is(err, store.ErrNotFound) {
			return api.RollbackResponse{}, errorf(NotFound, "history entry %d not found", req.HistoryID)
		}
		if err != nil {
			return api.RollbackResponse{}, err
		}
		if e.App != app {
			return api.RollbackResponse{}, errorf(Invalid, "history entry %d belongs to application %q, not %q", e.ID, e.App, app)
		}
		if e.Revision == "" {
			return api.RollbackResponse{}, errorf(Invalid, "history entry %d has no revision", e.ID)
		}
		rev = e.Revision
		if req.Cluster == "" {
			req.Cluster = e.Cluster
		}
	}
	targets, err := s.Targets(app, req.Cluster)
	if err != nil {
		return api.RollbackResponse{}, err
	}
	// A rollback is a sync to an earlier revision: a sync window of the
	// app's project that holds manual syncs holds it too, before anything
	// is pinned.
	var held []string
	for _, t := range targets {
		if t.ManualSyncDenied {
			held = append(held, fmt.Sprintf("cluster %s: %s", t.Cluster, t.SyncWindow))
		}
	}
	if len(held) > 0 {
		return api.RollbackResponse{}, errorf(Conflict, "rollback of %s refused by a sync window: %s", app, strings.Join(held, "; "))
	}
	changed, stop := s.d.Fleet.Watch()
	defer stop()
	if err := s.d.Controller.Pin(ctx, app, req.Cluster, rev); err != nil {
		return api.RollbackResponse{}, err
	}

	wctx, cancel := context.WithTimeout(ctx, s.d.CommandTimeout)
	defer cancel()
	want := map[string]bool{}
	for _, t := range targets {
		want[t.Cluster] = true
	}
	states, done := s.pinStates(app, rev, want)
	for !done {
		select {
		case <-changed:
			states, done = s.pinStates(app, rev, want)
			continue
		case <-wctx.Done():
		}
		break
	}
	var errs []string
	for _, t := range targets {
		if e := states[t.Cluster].err; e != "" {
			errs = append(errs, fmt.Sprintf("cluster %s: %s", t.Cluster, e))
		}
	}
	if len(errs) > 0 {
		if err := s.d.Controller.Pin(ctx, app, req.Cluster, ""); err != nil { // nothing changed on any cluster
			s.d.Log.Error("undo pin", "app", app, "error", err)
		}
		return api.RollbackResponse{}, errorf(Unprocessable, "rollback of %s to %s: %s", app, rev, strings.Join(errs, "; "))
	}
	resp := api.RollbackResponse{App: app, Revision: rev, Cluster: req.Cluster}
	for _, t := range targets {
		ps := states[t.Cluster]
		rt := api.RollbackTarget{Cluster: t.Cluster, Digest: ps.digest, Sync: api.RollbackPending}
		switch {
		case !ps.rendered:
			rt.Message = "the hub has not rendered the pinned revision yet"
		case !ps.connected:
			rt.Message = "agent not connected; it receives the pinned bundle when it connects, then run `flotilla app sync`"
		case !ps.held:
			rt.Message = "the agent has not confirmed the pinned bundle yet; run `flotilla app sync` once it has"
		default:
			if err := s.d.Fleet.SendCommand(t.Cluster, NewCommand(apiv1alpha1.Command_TYPE_SYNC, app, who)); err != nil {
				rt.Message = err.Error()
			} else {
				rt.Sync = api.RollbackSent
			}
		}
		resp.Targets = append(resp.Targets, rt)
	}
	return resp, nil
}

type pinState struct {
	rendered  bool // the snapshot shows the pin for this target
	err       string
	digest    string
	connected bool
	held      bool // the agent reports the pinned digest
}

// pinStates reports, per wanted cluster, how far the pin of app to rev
// got; done is true when nothing more can be waited for.
func (s *Service) pinStates(app, rev string, want map[string]bool) (map[string]pinState, bool) {
	reported := s.d.Fleet.Status()
	out := map[string]pinState{}
	done := true
	for _, as := range s.d.Controller.Snapshot().Apps {
		if as.Name != app {
			continue
		}
		for _, t := range as.Targets {
			if !want[t.Cluster] {
				continue
			}
			ps := pinState{}
			ps.connected, _ = s.d.Fleet.Connected(t.Cluster)
			if t.Pinned == rev {
				ps.rendered = true
				ps.err, ps.digest = t.Error, t.Digest
				ps.held = ps.err == "" && reported[t.Cluster][app].GetDigest() == t.Digest && t.Digest != ""
			}
			if !ps.rendered || (ps.err == "" && ps.connected && !ps.held) {
				done = false
			}
			out[t.Cluster] = ps
		}
	}
	return out, done
}

// Unpin removes the app's pins (on cluster only, when not ""), restoring
// its own sync policy. It is a Conflict *Error when nothing is pinned.
func (s *Service) Unpin(ctx context.Context, app, cluster string) error {
	targets, err := s.Targets(app, cluster)
	if err != nil {
		return err
	}
	pinned := false
	for _, t := range targets {
		pinned = pinned || t.Pinned != ""
	}
	if !pinned {
		on := ""
		if cluster != "" {
			on = " on cluster " + cluster
		}
		return errorf(Conflict, "application %q is not pinned%s", app, on)
	}
	return s.d.Controller.Pin(ctx, app, cluster, "")
}
