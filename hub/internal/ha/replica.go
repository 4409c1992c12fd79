package ha

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/store/kubestore"
)

// Options tune a Replica. Every flag is also read from FLOTILLA_*.
type Options struct {
	// Identity names this replica in the Lease; default the host name
	// (the pod's name).
	Identity string
	// LeaseName is the coordination.k8s.io Lease the singleton work runs
	// under.
	LeaseName     string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// StoreTimeout is how long the API server may go unanswered before the
	// replica stops serving.
	StoreTimeout time.Duration
	// CompactInterval is how often the Lease holder compacts the store.
	CompactInterval time.Duration
	// HeartbeatInterval is how often each replica renews its heartbeat
	// Lease; the agents' streams it holds count as connected on every
	// replica until three intervals pass without one.
	HeartbeatInterval time.Duration
}

// DefaultOptions returns the defaults, in one place.
func DefaultOptions() Options {
	return Options{
		LeaseName: "flotilla-hub", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second,
		RetryPeriod: 2 * time.Second, StoreTimeout: 10 * time.Second, CompactInterval: 5 * time.Minute,
		HeartbeatInterval: 5 * time.Second,
	}
}

// BindFlags registers the options on fs.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Identity, "ha-identity", o.Identity, "this replica's name in the Lease (default: the host name)")
	fs.StringVar(&o.LeaseName, "ha-lease-name", o.LeaseName, "coordination.k8s.io Lease the replicas' singleton work runs under (--store=kubernetes)")
	fs.DurationVar(&o.LeaseDuration, "ha-lease-duration", o.LeaseDuration, "how long a Lease holder's claim lasts without renewal")
	fs.DurationVar(&o.RenewDeadline, "ha-renew-deadline", o.RenewDeadline, "how long the holder tries to renew before giving the Lease up")
	fs.DurationVar(&o.RetryPeriod, "ha-retry-period", o.RetryPeriod, "how often replicas try to take or renew the Lease")
	fs.DurationVar(&o.StoreTimeout, "ha-store-timeout", o.StoreTimeout, "a replica that gets no answer from the API server for this long fails readiness and refuses new agent streams (it closes those it holds once its heartbeat Lease expired)")
	fs.DurationVar(&o.CompactInterval, "ha-compact-interval", o.CompactInterval, "how often the Lease holder removes orphaned status pages and long-expired tokens")
	fs.DurationVar(&o.HeartbeatInterval, "ha-heartbeat-interval", o.HeartbeatInterval, "how often each replica renews its heartbeat Lease; the agent streams of a replica silent for three intervals count as disconnected on the others")
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.LeaseName == "" {
		return errors.New("--ha-lease-name is required")
	}
	if !(o.LeaseDuration > o.RenewDeadline && o.RenewDeadline > o.RetryPeriod && o.RetryPeriod > 0) {
		return fmt.Errorf("--ha-lease-duration %s > --ha-renew-deadline %s > --ha-retry-period %s > 0 does not hold", o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if o.StoreTimeout < 2*o.RetryPeriod {
		return fmt.Errorf("--ha-store-timeout %s: must be at least twice --ha-retry-period", o.StoreTimeout)
	}
	if o.CompactInterval <= 0 {
		return fmt.Errorf("--ha-compact-interval %s: must be positive", o.CompactInterval)
	}
	if o.HeartbeatInterval < time.Second {
		return fmt.Errorf("--ha-heartbeat-interval %s: must be at least 1s", o.HeartbeatInterval)
	}
	return nil
}

// Deps are the hub's parts a Replica feeds.
type Deps struct {
	Config     *rest.Config
	Store      *kubestore.Store
	Fleet      *fleet.Fleet
	Controller *controller.Controller
	Git        *gitsource.Manager
	Agents     *agentapi.Server
	Log        hclog.Logger
}

// ErrStoreLost ends the streams of a replica that lost the API server.
var ErrStoreLost = errors.New("this hub lost its store (the API server); connect to another")

// Replica is one hub among several. Its methods are safe for concurrent
// use.
type Replica struct {
	opts Options
	d    Deps
	log  hclog.Logger
	core kubernetes.Interface

	lastOK    atomic.Int64 // unix nanoseconds of the last answer from the API server
	lastRenew atomic.Int64 // unix nanoseconds of the last renewal of this replica's heartbeat
	synced    atomic.Bool  // the informers have their first lists
	leading   atomic.Bool

	pubMu   sync.Mutex
	pending map[string]bool // repositories to announce
	pubWake chan struct{}

	pres *presence
}

// New returns a Replica.
func New(opts Options, d Deps) (*Replica, error) {
	if opts.Identity == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("replica identity: %w", err)
		}
		opts.Identity = h
	}
	cfg := rest.CopyConfig(d.Config)
	// Requests fail instead of hanging on a dead link, well before the
	// Lease's renew deadline.
	cfg.Timeout = opts.RenewDeadline / 2
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	r := &Replica{opts: opts, d: d, log: d.Log, core: core, pending: map[string]bool{}, pubWake: make(chan struct{}, 1), pres: newPresence()}
	d.Fleet.SetPresence(r.connected)
	d.Fleet.OnSessionChange(r.sessionChanged)
	return r, nil
}

// Identity returns the replica's name in the Lease.
func (r *Replica) Identity() string { return r.opts.Identity }

// Leading reports whether this replica holds the Lease.
func (r *Replica) Leading() bool { return r.leading.Load() }

// Ready is nil while the replica serves: its watches are synced, its
// heartbeat is fresh and the API server answered within StoreTimeout. A
// replica that is not ready refuses new agent streams; it closes those it
// holds only once its heartbeat expired (lost).
func (r *Replica) Ready() error {
	if !r.synced.Load() {
		return errors.New("store watches not synced yet")
	}
	if err := r.lost(); err != nil {
		return err
	}
	if since := time.Since(time.Unix(0, r.lastOK.Load())); since > r.opts.StoreTimeout {
		return fmt.Errorf("no answer from the API server for %s: %w", since.Round(time.Second), ErrStoreLost)
	}
	return nil
}

// heartbeatTTL is how long a heartbeat vouches for this replica's streams
// on the other replicas.
func (r *Replica) heartbeatTTL() time.Duration { return 3 * r.opts.HeartbeatInterval }

// lost is non-nil once this replica's heartbeat was not renewed within its
// TTL: the other replicas count its agents as disconnected, so it must not
// go on serving them. A slow API server that still renews the heartbeat
// is not a loss.
func (r *Replica) lost() error {
	if since := time.Since(time.Unix(0, r.lastRenew.Load())); since > r.heartbeatTTL() {
		return fmt.Errorf("heartbeat not renewed for %s: %w", since.Round(time.Second), ErrStoreLost)
	}
	return nil
}

func (r *Replica) answered() { r.lastOK.Store(time.Now().UnixNano()) }

// renewed records a renewal of the heartbeat written at (its renew time,
// as the other replicas read it).
func (r *Replica) renewed(at time.Time) {
	r.lastRenew.Store(at.UnixNano())
	r.answered()
}

// Run watches the store, takes part in the Lease election and stops
// serving while the API server is out of reach, until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	r.renewed(time.Now())
	// Clusters and statuses: the store's own watch cache (one watch each
	// serves the store's reads and this replica).
	var regs []cache.ResourceEventHandlerRegistration
	for _, w := range []struct {
		gvr   schema.GroupVersionResource
		watch func(cache.SharedIndexInformer) (cache.ResourceEventHandlerRegistration, error)
	}{{kubestore.ClustersResource, r.watchClusters}, {kubestore.StatusResource, r.watchStatuses}} {
		inf := r.d.Store.Informer(w.gvr)
		reg, err := w.watch(inf)
		if err != nil {
			return fmt.Errorf("watch %s: %w", w.gvr.Resource, err)
		}
		defer func() { _ = inf.RemoveEventHandler(reg) }()
		regs = append(regs, reg)
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(r.d.Store.Dynamic(), 0, r.d.Store.Namespace(), nil)
	pins := factory.ForResource(kubestore.PinsResource).Informer()
	r.watchPins(pins)
	r.watchRollouts(factory.ForResource(kubestore.RolloutsResource).Informer())
	refresh := dynamicinformer.NewFilteredDynamicSharedInformerFactory(r.d.Store.Dynamic(), 0, r.d.Store.Namespace(), func(o *metav1.ListOptions) {
		o.FieldSelector = "metadata.name=" + RefreshConfigMap
	})
	r.watchRefresh(refresh.ForResource(configMaps).Informer())
	beats := dynamicinformer.NewFilteredDynamicSharedInformerFactory(r.d.Store.Dynamic(), 0, r.d.Store.Namespace(), func(o *metav1.ListOptions) {
		o.LabelSelector = "hub.flotilla.dev/record=" + replicaRecord
	})
	r.watchHeartbeats(beats.ForResource(leases).Informer())
	factory.Start(ctx.Done())
	refresh.Start(ctx.Done())
	beats.Start(ctx.Done())
	defer factory.Shutdown()
	defer refresh.Shutdown()
	defer beats.Shutdown()
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("watch %s: %w", gvr.Resource, ctx.Err())
		}
	}
	for _, reg := range regs {
		if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
			return fmt.Errorf("watch the store: %w", ctx.Err())
		}
	}
	refresh.WaitForCacheSync(ctx.Done())
	beats.WaitForCacheSync(ctx.Done())
	r.claimStale()
	r.synced.Store(true)
	r.log.Info("store watches synced", "identity", r.opts.Identity)

	var wg sync.WaitGroup
	wg.Go(func() { r.elect(ctx) })
	wg.Go(func() { r.publish(ctx) })
	wg.Go(func() { r.heartbeat(ctx) })
	wg.Go(func() { r.writeHolders(ctx) })
	r.guard(ctx)
	wg.Wait()
	return nil
}

// guard closes the streams held here once this replica lost the API
// server (its heartbeat expired), spread over closeSpread in random order
// so that the agents' reconnections do not all land on the other replicas
// at once; it stops closing if the heartbeat is renewed meanwhile. An API
// server that is slow but renews the heartbeat (overload) closes nothing:
// dropping streams then would only add a reconnection storm to the load.
func (r *Replica) guard(ctx context.Context) {
	t := time.NewTicker(r.opts.RetryPeriod / 2)
	defer t.Stop()
	serving := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		serving = r.guardOnce(ctx, serving)
	}
}

// guardOnce is one check of guard: serving is what the last one said.
func (r *Replica) guardOnce(ctx context.Context, serving bool) bool {
	err := r.lost()
	switch {
	case err != nil && serving:
		r.log.Error("lost the store: closing every agent stream and failing readiness", "error", err)
		r.closeSpread(ctx, r.opts.HeartbeatInterval)
	case err == nil && !serving:
		r.log.Info("store reachable again: serving")
	}
	return err == nil
}

// closeSpread closes every stream held here with ErrStoreLost, in random
// order, in closeSteps steps over spread.
func (r *Replica) closeSpread(ctx context.Context, spread time.Duration) {
	names := r.d.Fleet.Sessions()
	rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	per := max(1, (len(names)+closeSteps-1)/closeSteps)
	for i := 0; i < len(names); i += per {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(spread / closeSteps):
			}
			if r.lost() == nil {
				r.log.Info("heartbeat renewed again: keeping the other streams", "closed", i, "kept", len(names)-i)
				return
			}
		}
		for _, c := range names[i:min(i+per, len(names))] {
			r.d.Fleet.Close(c, ErrStoreLost)
		}
	}
	// Streams that attached meanwhile (before readiness failed) too.
	r.d.Fleet.CloseAll(ErrStoreLost)
}

// closeSteps is how many steps closeSpread closes the streams in.
const closeSteps = 20

// elect takes part in the Lease election until ctx ends; the holder runs
// the singleton work.
func (r *Replica) elect(ctx context.Context) {
	lock := &observedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: r.opts.LeaseName, Namespace: r.d.Store.Namespace()},
		Client:     r.core.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: r.opts.Identity},
	}, ok: r.answered}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: r.opts.LeaseName, ReleaseOnCancel: true,
			LeaseDuration: r.opts.LeaseDuration, RenewDeadline: r.opts.RenewDeadline, RetryPeriod: r.opts.RetryPeriod,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					r.leading.Store(true)
					r.log.Info("holding the Lease: running the singleton work", "lease", r.opts.LeaseName)
					r.d.Controller.LeadRollouts(ctx, true)
					r.singletons(ctx)
				},
				OnStoppedLeading: func() {
					r.d.Controller.LeadRollouts(context.WithoutCancel(ctx), false)
					r.leading.Store(false)
					r.log.Info("Lease released or lost", "lease", r.opts.LeaseName)
				},
				OnNewLeader: func(id string) { r.log.Debug("Lease holder", "identity", id) },
			},
		})
		if err != nil {
			r.log.Error("leader election", "error", err)
			return
		}
		le.Run(ctx)
	}
}

// singletons runs the work one replica does, until the Lease is lost.
func (r *Replica) singletons(ctx context.Context) {
	t := time.NewTicker(r.opts.CompactInterval)
	defer t.Stop()
	for {
		n, err := r.d.Store.Compact(ctx, time.Now(), 24*time.Hour)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("store compaction", "error", err)
		} else if n > 0 {
			r.log.Info("store compacted", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// observedLock records every answer of the API server to the election's
// requests: they are this replica's heartbeat with its store.
type observedLock struct {
	resourcelock.Interface
	ok func()
}

func (l *observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err == nil || isAnswer(err) {
		l.ok()
	}
	return rec, raw, err
}

func (l *observedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	if err == nil || isAnswer(err) {
		l.ok()
	}
	return err
}

func (l *observedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, ler)
	if err == nil || isAnswer(err) {
		l.ok()
	}
	return err
}
