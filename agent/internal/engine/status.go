package engine

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/agent/internal/health"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	sharedhealth "github.com/flotilla-cd/flotilla/shared/health"
)

// buildStatus computes the app's status from the worker's state and the
// watch cache.
func (a *app) buildStatus() *apiv1alpha1.AppStatus {
	st := &apiv1alpha1.AppStatus{
		App:           a.name,
		Digest:        a.want.GetDigest(),
		Revision:      a.want.GetRevision(),
		Message:       a.lastErr,
		LastOperation: proto.Clone(a.lastOp).(*apiv1alpha1.Operation),
	}
	a.mu.Lock()
	st.Orphaned = a.orphaned // replaced, never changed, by setOrphaned
	saving := a.saving != "" && a.saving == st.Digest
	a.mu.Unlock()
	if a.lastOp == nil {
		st.LastOperation = nil
	}
	if a.bundle == nil {
		st.Sync, st.Health = apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN, apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN
		return st
	}
	appSync := apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED
	appHealth := apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY
	st.Objects = make([]*apiv1alpha1.ObjectStatus, 0, len(a.order)+len(a.stale))
	for _, k := range a.order {
		o := a.objs[k]
		os := &apiv1alpha1.ObjectStatus{
			Group: k.Group, Version: o.desired.GroupVersionKind().Version, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name,
			Sync: o.sync, Message: o.message, Diff: o.diff,
		}
		h := a.objectHealth(o)
		if o.healErr != "" {
			// The API server refuses to put it back: Degraded, with why.
			h = health.Result{Status: apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED, Message: "self-heal refused: " + o.healErr}
		}
		os.Health = h.Status
		if os.Message == "" && h.Status != apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY {
			os.Message = h.Message
		}
		if h.Status == apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING {
			os.Sync = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
		}
		switch os.Sync {
		case apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC:
			appSync = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
		case apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN:
			if appSync == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
				appSync = apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN
			}
		}
		appHealth = sharedhealth.Worst(appHealth, h.Status)
		st.Objects = append(st.Objects, os)
	}
	for k, so := range a.stale {
		st.Objects = append(st.Objects, &apiv1alpha1.ObjectStatus{
			Group: k.Group, Version: so.entry.Version, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name,
			Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN, Message: so.reason,
		})
		if !so.ignoreExtraneous {
			appSync = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
		}
	}
	if saving && appSync == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
		// Not Synced before the bundle is persisted (Accept persists it
		// while the worker loads it).
		appSync = apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN
	}
	st.Sync, st.Health = appSync, appHealth
	return st
}

// objectHealth computes (and caches per resourceVersion) an object's health.
func (a *app) objectHealth(o *objState) health.Result {
	if !o.mapped || !a.e.cache.Watched(o.gvr) {
		return health.Result{Status: apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN, Message: "kind not served or not watched yet"}
	}
	live, ok := a.e.cache.Get(o.gvr, o.key.Namespace, o.key.Name)
	if !ok {
		return health.Of(nil)
	}
	if rv := live.GetResourceVersion(); rv != o.healthRV || rv == "" {
		o.health, o.healthRV = health.Of(live), rv
	}
	return o.health
}

// publish stores the app's status and signals Updates when it changed
// (ignoring observed_at): at once when the app's sync state or its last
// operation changed (what a user or the hub waits for), otherwise at most
// once per StatusEvery (object health and message churn).
func (a *app) publish() {
	st := a.buildStatus()
	a.mu.Lock()
	changed, urgent := a.setStatusLocked(st)
	a.mu.Unlock()
	switch {
	case urgent:
		a.e.notify.signalNow()
	case changed:
		a.e.notify.signal()
	}
}

// setStatusLocked makes st (a new message, which is not changed after)
// the app's status, with observed_at now and a new number, unless it is
// the same as the current one but for observed_at. urgent: the sync state
// or the last operation changed. a.mu must be held.
func (a *app) setStatusLocked(st *apiv1alpha1.AppStatus) (changed, urgent bool) {
	prev := a.status
	changed = prev == nil || !proto.Equal(withoutTime(prev), st)
	if !changed {
		return false, false
	}
	urgent = prev == nil || prev.GetSync() != st.GetSync() || !proto.Equal(prev.GetLastOperation(), st.GetLastOperation())
	st.ObservedAt = timestamppb.Now()
	a.status = st
	a.statusSeq = a.e.statusSeq.Add(1)
	return true, urgent
}

func withoutTime(s *apiv1alpha1.AppStatus) *apiv1alpha1.AppStatus {
	c := proto.Clone(s).(*apiv1alpha1.AppStatus)
	c.ObservedAt = nil
	return c
}

// currentStatus returns a copy of the last published status, or a minimal
// one before the worker has run.
func (a *app) currentStatus() *apiv1alpha1.AppStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.status != nil {
		return cloneStatus(a.status)
	}
	return &apiv1alpha1.AppStatus{App: a.name, Digest: a.held}
}

// statusAfter returns a copy of the last published status and its number
// when that number is not seq, else nil; before the worker has published,
// the minimal status and 0.
func (a *app) statusAfter(seq uint64) (*apiv1alpha1.AppStatus, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.status == nil:
		return &apiv1alpha1.AppStatus{App: a.name, Digest: a.held}, 0
	case a.statusSeq == seq:
		return nil, seq
	}
	return cloneStatus(a.status), a.statusSeq
}

func cloneStatus(s *apiv1alpha1.AppStatus) *apiv1alpha1.AppStatus {
	return proto.Clone(s).(*apiv1alpha1.AppStatus)
}
