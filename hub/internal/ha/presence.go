package ha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"

	"golang.org/x/sync/errgroup"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// Which replica holds an agent's stream, so that every replica answers
// alike whether a cluster is connected. Two kinds of writes, none per
// agent at steady state:
//   - each replica renews a heartbeat Lease of its own (one write per
//     replica per Options.HeartbeatInterval);
//   - the replica an agent attaches to writes its name in the cluster's
//     ConnectedTo, and clears it (with LastSeen) when the stream ends.
//
// A cluster is connected while the replica in its ConnectedTo has a fresh
// heartbeat (renewed within its lease duration, three intervals): the
// claims of a replica killed without a chance to clear them expire with
// its heartbeat.

// replicaRecord labels the replicas' heartbeat Leases.
const replicaRecord = "replica"

var leases = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// heartbeatLease is the name of identity's heartbeat Lease.
func heartbeatLease(identity string) string {
	name := "flotilla-hub-replica-" + identity
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return fmt.Sprintf("flotilla-hub-replica-%x", identity)
	}
	return name
}

type beat struct {
	renew time.Time
	ttl   time.Duration
}

func (b beat) fresh(now time.Time) bool { return now.Sub(b.renew) < b.ttl }

// presence is what a replica knows of the others' heartbeats and of the
// streams' holders.
type presence struct {
	mu      sync.Mutex
	holder  map[string]string // cluster → replica in its ConnectedTo
	beats   map[string]beat   // replica → its last heartbeat
	pending map[string]bool   // clusters whose ConnectedTo may need a write
	wake    chan struct{}
}

func newPresence() *presence {
	return &presence{holder: map[string]string{}, beats: map[string]beat{}, pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// connected answers Fleet.Connected: a stream held here, or by a replica
// whose heartbeat is fresh; last seen is then the holder's last heartbeat
// (the same on every replica); not connected, the store's LastSeen says.
func (r *Replica) connected(cluster string, local bool, seen time.Time) (bool, time.Time) {
	p := r.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	holder := p.holder[cluster]
	if local {
		holder = r.opts.Identity
	}
	if holder == "" {
		return false, time.Time{}
	}
	b, ok := p.beats[holder]
	switch {
	case ok && (local || b.fresh(time.Now())):
		return true, b.renew
	case local:
		return true, seen // before this replica's first heartbeat came back
	}
	return false, time.Time{}
}

// sessionChanged queues cluster's ConnectedTo for a write (called under
// the fleet's lock).
func (r *Replica) sessionChanged(cluster string) {
	p := r.pres
	p.mu.Lock()
	p.pending[cluster] = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// setHolder records a cluster's ConnectedTo as the store has it.
func (r *Replica) setHolder(cluster, replica string) {
	p := r.pres
	p.mu.Lock()
	changed := p.holder[cluster] != replica
	if replica == "" {
		delete(p.holder, cluster)
	} else {
		p.holder[cluster] = replica
	}
	p.mu.Unlock()
	if changed {
		r.d.Fleet.Changed()
	}
}

// claimStale queues the clusters the store says are held here: after a
// restart with the same identity, those without a session are cleared.
func (r *Replica) claimStale() {
	p := r.pres
	p.mu.Lock()
	var mine []string
	for c, h := range p.holder {
		if h == r.opts.Identity {
			mine = append(mine, c)
		}
	}
	p.mu.Unlock()
	for _, c := range mine {
		r.sessionChanged(c)
	}
}

var errNoChange = errors.New("no change")

// writeHolders writes the queued clusters' ConnectedTo as this replica's
// sessions say, until ctx ends.
func (r *Replica) writeHolders(ctx context.Context) {
	p := r.pres
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.mu.Lock()
		batch := p.pending
		p.pending = map[string]bool{}
		p.mu.Unlock()
		// After a failover many agents attach at once: a few writes in
		// flight at a time.
		var g errgroup.Group
		g.SetLimit(holderWriters)
		for cluster := range batch {
			g.Go(func() error {
				r.writeHolder(ctx, cluster)
				return nil
			})
		}
		_ = g.Wait()
	}
}

// holderWriters bounds the ConnectedTo writes in flight.
const holderWriters = 8

func (r *Replica) writeHolder(ctx context.Context, cluster string) {
	held := r.d.Fleet.HasSession(cluster)
	err := r.d.Store.UpdateCluster(ctx, cluster, func(c *store.Cluster) error {
		switch {
		case held && c.ConnectedTo != r.opts.Identity:
			c.ConnectedTo = r.opts.Identity
		case !held && c.ConnectedTo == r.opts.Identity:
			c.ConnectedTo, c.LastSeen = "", time.Now().UTC()
		default:
			return errNoChange
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
		r.log.Warn("record the stream's replica", "cluster", cluster, "connected", held, "error", err)
	}
}

// heartbeat renews this replica's heartbeat Lease every interval until
// ctx ends, then removes it (its claims end at once).
func (r *Replica) heartbeat(ctx context.Context) {
	name := heartbeatLease(r.opts.Identity)
	ls := r.core.CoordinationV1().Leases(r.d.Store.Namespace())
	secs := int32((3*r.opts.HeartbeatInterval + time.Second - 1) / time.Second)
	t := time.NewTicker(r.opts.HeartbeatInterval)
	defer t.Stop()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.RenewDeadline/2)
		defer cancel()
		if err := ls.Delete(dctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			r.log.Warn("remove this replica's heartbeat", "lease", name, "error", err)
		}
	}()
	expired := map[string]bool{}
	for {
		now := metav1.NewMicroTime(time.Now())
		l, err := ls.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = ls.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "flotilla-hub", "hub.flotilla.dev/record": replicaRecord}},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &r.opts.Identity, LeaseDurationSeconds: &secs, RenewTime: &now},
			}, metav1.CreateOptions{})
		case err == nil:
			l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &r.opts.Identity, &secs, &now
			_, err = ls.Update(ctx, l, metav1.UpdateOptions{})
		}
		switch {
		case err == nil:
			r.renewed(now.Time)
		case isAnswer(err):
			r.answered()
		}
		if err != nil && ctx.Err() == nil {
			r.log.Warn("renew this replica's heartbeat", "lease", name, "error", err)
		}
		// A replica whose heartbeat just went stale: its clusters show
		// disconnected now; tell the event streams.
		r.pres.mu.Lock()
		changed := false
		for id, b := range r.pres.beats {
			if stale := !b.fresh(time.Now()); stale != expired[id] {
				expired[id], changed = stale, true
			}
		}
		r.pres.mu.Unlock()
		if changed {
			r.d.Fleet.Changed()
		}
		// A failed renewal is tried again sooner: the heartbeat must be
		// renewed within its TTL or this replica's streams are closed.
		retry := make(<-chan time.Time)
		if err != nil {
			retry = time.After(r.opts.RetryPeriod)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-retry:
		}
	}
}

// watchHeartbeats keeps the replicas' heartbeats.
func (r *Replica) watchHeartbeats(inf cache.SharedIndexInformer) {
	set := func(obj any, gone bool) {
		o := unstructuredOf(obj)
		if o == nil {
			return
		}
		var l coordinationv1.Lease
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &l); err != nil || l.Spec.HolderIdentity == nil {
			return
		}
		id := *l.Spec.HolderIdentity
		r.pres.mu.Lock()
		if gone || l.Spec.RenewTime == nil {
			delete(r.pres.beats, id)
		} else {
			ttl := 3 * r.opts.HeartbeatInterval
			if l.Spec.LeaseDurationSeconds != nil {
				ttl = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
			}
			r.pres.beats[id] = beat{renew: l.Spec.RenewTime.Time, ttl: ttl}
		}
		r.pres.mu.Unlock()
		if gone {
			r.d.Fleet.Changed()
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(obj, false) },
		UpdateFunc: func(_, n any) { set(n, false) },
		DeleteFunc: func(obj any) { set(obj, true) },
	})
}
