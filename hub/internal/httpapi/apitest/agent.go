package apitest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// SimAgent plays a cluster's agent at the fleet boundary. It follows the
// agent's contract: a bundle with automated sync is applied at once
// (reported Synced and Healthy); one without is reported OutOfSync, with a
// drift diff per object, until a SYNC command applies it. Every finished
// sync is recorded in the history with its initiator, as the hub's status
// hook does.
type SimAgent struct {
	Cluster string
	h       *Hub
	sess    *fleet.Session
	done    chan struct{}

	mu      sync.Mutex
	held    map[string]*apiv1alpha1.Bundle
	applied map[string]string // app → digest applied
	clock   time.Time
	// Version is reported as the agent version.
	Version string
	// orphans are the objects SetOrphaned says are orphaned, per app.
	orphans map[string][]*apiv1alpha1.ObjectRef

	// Live view (live.go).
	appliedBundle map[string]*apiv1alpha1.Bundle // app → bundle applied
	logs          map[string][]string            // pod → lines
	logWoken      chan struct{}                  // closed when a log grows
	events        []*apiv1alpha1.LiveEvent
	liveIn        chan *apiv1alpha1.LiveRequest
	liveAgent     *liveview.Agent
}

// Connect attaches cluster's simulated agent and waits until it reported
// the status of every bundle it was sent first.
func (h *Hub) Connect(t testing.TB, cluster string) *SimAgent {
	t.Helper()
	a := &SimAgent{
		Cluster: cluster, h: h, done: make(chan struct{}),
		held: map[string]*apiv1alpha1.Bundle{}, applied: map[string]string{}, appliedBundle: map[string]*apiv1alpha1.Bundle{},
		orphans: map[string][]*apiv1alpha1.ObjectRef{},
		clock:   Epoch.Add(time.Hour), Version: "v0.1.0-test",
	}
	err := h.Store.UpdateCluster(h.ctx, cluster, func(c *store.Cluster) error {
		c.AgentVersion, c.CertSerial, c.LastSeen = a.Version, "1", Epoch
		return nil
	})
	if err != nil {
		t.Fatalf("connect %s: %v", cluster, err)
	}
	a.sess = h.Fleet.Attach(cluster, nil)
	a.startLive()
	a.receive(a.sess.Next()) // the first delta, synchronously
	go a.loop()
	t.Cleanup(a.Close)
	return a
}

// Close detaches the agent.
func (a *SimAgent) Close() {
	select {
	case <-a.done:
		return
	default:
	}
	a.sess.Close()
	a.liveAgent.Close()
	<-a.done
}

func (a *SimAgent) loop() {
	defer close(a.done)
	for {
		select {
		case <-a.sess.Done():
			return
		case <-a.h.ctx.Done():
			return
		case <-a.sess.Woken():
			a.receive(a.sess.Next())
		case cmd := <-a.sess.Commands():
			a.h.Status.Deliver(a.Cluster, a.do(cmd))
		}
	}
}

func (a *SimAgent) tick() time.Time {
	a.clock = a.clock.Add(time.Second)
	return a.clock
}

func (a *SimAgent) receive(ds *apiv1alpha1.DesiredState) {
	if ds == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range ds.GetBundles() {
		a.held[b.GetApp()] = b
		if b.GetSyncPolicy().GetAutomated() {
			a.apply(b, "automated")
		} else {
			a.report(b, nil)
		}
	}
	for _, app := range ds.GetRemovedApps() {
		delete(a.held, app)
		delete(a.applied, app)
		delete(a.appliedBundle, app)
		a.h.Fleet.Report(a.Cluster, &apiv1alpha1.AppStatus{App: app, Removed: true})
		_ = a.h.Store.DeleteStatus(a.h.ctx, a.Cluster, app)
	}
}

func (a *SimAgent) do(cmd *apiv1alpha1.Command) *apiv1alpha1.CommandResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := &apiv1alpha1.CommandResult{Id: cmd.GetId(), App: cmd.GetApp()}
	b := a.held[cmd.GetApp()]
	if b == nil {
		res.Message = fmt.Sprintf("app %s is not held by this agent", cmd.GetApp())
		return res
	}
	switch cmd.GetType() {
	case apiv1alpha1.Command_TYPE_SYNC:
		a.apply(b, cmd.GetInitiatedBy())
		res.Ok, res.Message = true, "synced"
	case apiv1alpha1.Command_TYPE_REFRESH:
		res.Ok, res.Message = true, "refreshed"
	case apiv1alpha1.Command_TYPE_DIFF:
		objs, _ := manifest.DecodeObjects(b)
		var d strings.Builder
		n := 0
		if a.applied[b.GetApp()] != b.GetDigest() {
			for _, o := range objs {
				d.WriteString(objectDiff(manifest.KeyOf(o).String()))
				n++
			}
		}
		res.Ok, res.Diff, res.Message = true, d.String(), fmt.Sprintf("%d objects differ", n)
	}
	return res
}

// apply records b as applied by initiatedBy and reports it.
func (a *SimAgent) apply(b *apiv1alpha1.Bundle, initiatedBy string) {
	started := a.tick()
	op := &apiv1alpha1.Operation{
		Phase: apiv1alpha1.Operation_PHASE_SUCCEEDED, Revision: b.GetRevision(), Digest: b.GetDigest(),
		Message: "applied", InitiatedBy: initiatedBy,
		StartedAt: timestamppb.New(started), FinishedAt: timestamppb.New(a.tick()),
	}
	a.applied[b.GetApp()] = b.GetDigest()
	a.appliedBundle[b.GetApp()] = b
	_, err := a.h.Store.AppendHistory(a.h.ctx, store.HistoryEntry{
		App: b.GetApp(), Cluster: a.Cluster, Revision: op.GetRevision(), Digest: op.GetDigest(),
		StartedAt: started, FinishedAt: op.GetFinishedAt().AsTime(), InitiatedBy: initiatedBy,
		Result: store.ResultSucceeded, Message: op.GetMessage(),
	})
	if err != nil {
		panic(fmt.Sprintf("sim agent %s: append history: %v", a.Cluster, err))
	}
	a.report(b, op)
}

// report sends the status of b: Synced and Healthy when it is applied,
// otherwise OutOfSync with each object's diff. op, when set, is the
// operation that just finished.
func (a *SimAgent) report(b *apiv1alpha1.Bundle, op *apiv1alpha1.Operation) {
	synced := a.applied[b.GetApp()] == b.GetDigest()
	st := &apiv1alpha1.AppStatus{
		App: b.GetApp(), Digest: b.GetDigest(), Revision: b.GetRevision(),
		Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
		LastOperation: op, ObservedAt: timestamppb.New(a.clock),
	}
	if prev := a.h.Fleet.Status()[a.Cluster][b.GetApp()]; op == nil && prev != nil {
		st.LastOperation = prev.GetLastOperation()
	}
	if !synced {
		st.Sync = apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
		if a.applied[b.GetApp()] == "" {
			st.Health = apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING
		}
	}
	objs, err := manifest.DecodeObjects(b)
	if err != nil {
		panic(fmt.Sprintf("sim agent %s: decode bundle of %s: %v", a.Cluster, b.GetApp(), err))
	}
	for _, o := range objs {
		k := manifest.KeyOf(o)
		os := &apiv1alpha1.ObjectStatus{
			Group: k.Group, Version: o.GroupVersionKind().Version, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name,
			Sync: st.Sync, Health: st.Health,
		}
		if !synced {
			os.Diff = objectDiff(k.String())
		}
		st.Objects = append(st.Objects, os)
	}
	if set := b.GetSyncPolicy().GetOrphanedResources(); set != nil {
		// As the agent does: the objects found, counted, with the setting's
		// warn echoed.
		st.Orphaned = &apiv1alpha1.OrphanedReport{Count: int32(len(a.orphans[b.GetApp()])), Objects: a.orphans[b.GetApp()], Warn: set.GetWarn()}
	}
	a.h.Fleet.Report(a.Cluster, st)
	if err := a.h.Store.PutStatus(a.h.ctx, a.Cluster, st); err != nil {
		panic(fmt.Sprintf("sim agent %s: put status: %v", a.Cluster, err))
	}
}

func objectDiff(key string) string {
	return fmt.Sprintf("--- live %s\n+++ desired %s\n@@ -1 +1 @@\n-(missing)\n+(desired)\n", key, key)
}

// WaitFor waits until cond holds on the fleet, re-checking on every fleet
// change, or fails the test after timeout.
func (h *Hub) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ch, stop := h.Fleet.Watch()
	defer stop()
	ctx, cancel := context.WithTimeout(h.ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// SetOrphaned makes the agent report refs as app's orphaned objects, when
// the bundle it holds asks for orphaned-resource monitoring, and reports
// again.
func (a *SimAgent) SetOrphaned(app string, refs ...*apiv1alpha1.ObjectRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.orphans[app] = refs
	if b := a.held[app]; b != nil {
		a.report(b, nil)
	}
}

// Held returns the bundle the agent holds for app (nil: none).
func (a *SimAgent) Held(app string) *apiv1alpha1.Bundle {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held[app]
}
