package status

import (
	"context"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Observe is told of every status an agent reported (prev is the one it
// replaced, nil at first); when cur carries a finished operation that prev
// did not, its history entry is appended to the store. The write happens
// off the caller's path (the store batches writes; the agent stream must
// not wait for it), under ctx without its cancellation; Wait waits for the
// writes in flight. It has the shape of agentapi.Hooks.Status, with a ctx.
func (s *Service) Observe(ctx context.Context, cluster string, prev, cur *apiv1alpha1.AppStatus) {
	if !Finished(prev, cur) {
		return
	}
	s.history.Add(1)
	go func() {
		defer s.history.Done()
		e := HistoryEntry(cluster, cur)
		if _, err := s.d.Store.AppendHistory(context.WithoutCancel(ctx), e); err != nil {
			s.d.Log.Warn("append history", "cluster", cluster, "app", e.App, "error", err)
		}
	}()
}

// Wait waits for the history writes Observe started; call it before the
// store is closed.
func (s *Service) Wait() { s.history.Wait() }

// Finished reports whether cur carries a finished operation that prev did
// not report: one with another finish time or another digest.
func Finished(prev, cur *apiv1alpha1.AppStatus) bool {
	op := cur.GetLastOperation()
	if op == nil || op.GetFinishedAt() == nil {
		return false
	}
	pop := prev.GetLastOperation()
	return pop == nil || pop.GetFinishedAt() == nil || !pop.GetFinishedAt().AsTime().Equal(op.GetFinishedAt().AsTime()) || pop.GetDigest() != op.GetDigest()
}

// HistoryEntry is the history entry of cur's last operation on cluster:
// Failed when its phase is, Succeeded otherwise.
func HistoryEntry(cluster string, cur *apiv1alpha1.AppStatus) store.HistoryEntry {
	op := cur.GetLastOperation()
	res := store.ResultSucceeded
	if op.GetPhase() == apiv1alpha1.Operation_PHASE_FAILED {
		res = store.ResultFailed
	}
	return store.HistoryEntry{
		App: cur.GetApp(), Cluster: cluster, Revision: op.GetRevision(), Digest: op.GetDigest(),
		StartedAt: op.GetStartedAt().AsTime(), FinishedAt: op.GetFinishedAt().AsTime(),
		InitiatedBy: op.GetInitiatedBy(), Result: res, Message: op.GetMessage(), Hooks: store.HookRecords(op),
	}
}
