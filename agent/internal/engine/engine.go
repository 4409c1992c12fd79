package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	"github.com/flotilla-cd/flotilla/agent/internal/live"
	"github.com/flotilla-cd/flotilla/agent/internal/policy"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Defaults of Options.
const (
	DefaultNamespace   = "flotilla-system"
	DefaultParallelism = 24
	DefaultStatusEvery = 100 * time.Millisecond
)

// Options configure an Engine. Zero values take the defaults.
type Options struct {
	// Namespace holds the persisted bundles and inventories
	// (default "flotilla-system").
	Namespace string
	// FieldManager is the server-side apply field manager
	// (default "flotilla-agent").
	FieldManager string
	// Cluster names the cluster in logs.
	Cluster string
	// Parallelism bounds concurrent applies within one step of a wave
	// (default 24).
	Parallelism int
	// StatusEvery is the least time between two Updates signals (default
	// 100 ms); a change inside the interval is signalled at its end.
	StatusEvery time.Duration
	// Namespaces limits the agent to these namespaces, for an agent whose
	// RBAC covers only them: objects are watched per namespace (no
	// cluster-wide list or watch), and a bundle object that is
	// cluster-scoped or in another namespace is refused with an error
	// naming it (wrapping ErrNotPermitted); CreateNamespace=true creates
	// nothing. Empty: every namespace and cluster-scoped objects.
	Namespaces []string
	// Policy is the cluster-side policy (package policy): a bundle with
	// an object it refuses is not applied at all, and the app's status
	// names the object and the rule. A change re-plans every app. Nil:
	// no policy.
	Policy *policy.Set
	// OrphansEvery is how often the agent looks for orphaned objects for
	// the apps whose sync policy asks for it (default 3 min); it also looks
	// shortly after each sync operation and refresh.
	OrphansEvery time.Duration
	// MaxWritesInFlight bounds the writes to the API server (applies and
	// their dry-runs, deletes, inventory Secrets) under way at once across
	// all apps (default DefaultMaxWritesInFlight); the others wait their
	// turn. A thousand apps syncing at once otherwise send a thousand
	// writes together: an API server that lets them all in (the agent's
	// user exempt from priority and fairness, as system:masters is) then
	// answers none within its request timeout (Services, which allocate
	// an IP, first), and every such app's sync fails and backs off.
	MaxWritesInFlight int
	// Registerer receives the engine's Prometheus metrics
	// (flotilla_agent_*); nil registers them nowhere.
	Registerer prometheus.Registerer

	// healPacing paces self-heals (zero: defaultHealPacing); tests shorten
	// it.
	healPacing healPacing
	// clock tells the time to every decision and timer (nil: the real
	// clock); tests inject a fake one.
	clock clock.Clock
}

func (o *Options) setDefaults() {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.FieldManager == "" {
		o.FieldManager = apply.DefaultFieldManager
	}
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.StatusEvery <= 0 {
		o.StatusEvery = DefaultStatusEvery
	}
	if o.MaxWritesInFlight <= 0 {
		o.MaxWritesInFlight = DefaultMaxWritesInFlight
	}
	if o.OrphansEvery <= 0 {
		o.OrphansEvery = DefaultOrphansEvery
	}
	o.Namespaces = normalizeNamespaces(o.Namespaces)
	if o.clock == nil {
		o.clock = clock.RealClock{}
	}
	if o.healPacing == (healPacing{}) {
		o.healPacing = defaultHealPacing
	}
}

// normalizeNamespaces trims, drops empty entries and duplicates, and sorts;
// nil when none is left.
func normalizeNamespaces(in []string) []string {
	var out []string
	for _, ns := range in {
		if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// Engine enforces the accepted bundles on one cluster.
type Engine struct {
	opts    Options
	clock   clock.Clock
	log     hclog.Logger
	applier *apply.Applier
	cache   *live.Cache
	store   *inventory.Store
	notify  *notifier
	metrics *metrics
	orphans *orphanScanner

	mu         sync.Mutex
	apps       map[string]*app
	tombstones map[string]tombstone // apps removed since start
	// statusSeq numbers published statuses and tombstones (see
	// ChangedStatuses); it only grows.
	statusSeq atomic.Uint64
	runCtx    context.Context // set by Run
	stopping  bool            // Run is returning
	wg        sync.WaitGroup
}

// New builds an engine for the cluster cfg points at. It raises the client
// rate limits (QPS 500, burst 1000) unless cfg sets higher ones, and bounds
// its writes in flight (Options.MaxWritesInFlight).
func New(cfg *rest.Config, opts Options, log hclog.Logger) (*Engine, error) {
	opts.setDefaults()
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS < 500 {
		cfg.QPS = 500
	}
	if cfg.Burst < 1000 {
		cfg.Burst = 1000
	}
	cfg.Wrap(limitWrites(opts.MaxWritesInFlight))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	disco, err := apply.NewDiscoveryClient(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apply.NewMapper(cfg)
	if err != nil {
		return nil, err
	}
	log = log.Named("engine")
	if opts.Cluster != "" {
		log = log.With("cluster", opts.Cluster)
	}
	e := &Engine{
		opts:       opts,
		clock:      opts.clock,
		log:        log,
		applier:    apply.NewApplier(dyn, mapper, opts.FieldManager),
		store:      inventory.New(dyn, opts.Namespace, opts.FieldManager),
		notify:     newNotifier(opts.StatusEvery),
		metrics:    newMetrics(),
		orphans:    &orphanScanner{disco: disco, meta: meta, kick: make(chan struct{}, 1)},
		apps:       map[string]*app{},
		tombstones: map[string]tombstone{},
	}
	e.cache = live.New(dyn, apply.ManagedSelector, opts.Namespaces, e.onEvent, log.Named("live"))
	if opts.Policy != nil {
		opts.Policy.OnChange(e.pokeAll)
	}
	if opts.Registerer != nil {
		if err := e.metrics.register(opts.Registerer, e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Load reads the persisted bundles and inventories. Call it once, before Run
// and before Held.
func (e *Engine) Load(ctx context.Context) error {
	recs, err := e.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load persisted apps: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rec := range recs {
		a := e.newApp(rec.App)
		a.persisted = rec.Bundle
		a.held = rec.Bundle.GetDigest()
		a.inventory = rec.Inventory
		a.hooksDone = rec.HooksDone
		a.pending = rec.Bundle
		a.removed = rec.Removed
		e.apps[rec.App] = a
		e.log.Info("loaded persisted app", "app", rec.App, "digest", rec.Bundle.GetDigest(), "objects", len(rec.Inventory), "removed", rec.Removed)
	}
	return nil
}

// Run enforces the accepted bundles until ctx ends, then waits for its
// goroutines. It needs no hub.
func (e *Engine) Run(ctx context.Context) error {
	e.cache.Start(ctx)
	e.mu.Lock()
	e.runCtx = ctx
	for _, a := range e.apps {
		e.start(a)
	}
	n := len(e.apps)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.runOrphans(ctx)
	}()
	e.mu.Unlock()
	e.log.Info("engine running", "apps", n)
	<-ctx.Done()
	e.mu.Lock()
	e.stopping = true // no worker starts after this
	e.mu.Unlock()
	e.wg.Wait()
	e.cache.Wait()
	e.notify.stop()
	return nil
}

// start runs a's worker; e.mu must be held.
func (e *Engine) start(a *app) {
	if e.runCtx == nil || e.stopping || a.started {
		return
	}
	a.started = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		a.run(e.runCtx)
	}()
}

// pokeAll wakes every app (the cluster policy changed: each plans its
// bundle again).
func (e *Engine) pokeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.apps {
		a.poke()
	}
}

// Held returns app → digest of every accepted bundle (removed apps left out).
func (e *Engine) Held() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.apps))
	for name, a := range e.apps {
		if d, removed := a.heldDigest(); !removed && d != "" {
			out[name] = d
		}
	}
	return out
}

// Updates signals (buffered 1, coalescing, at most once per StatusEvery)
// that the status of some app changed; read Statuses then.
func (e *Engine) Updates() <-chan struct{} { return e.notify.c }

// Statuses returns the current status of every app, sorted by app name,
// plus a status with Removed set for each app deleted since start. The
// returned messages are copies the caller may keep.
func (e *Engine) Statuses() []*apiv1alpha1.AppStatus {
	e.mu.Lock()
	out := make([]*apiv1alpha1.AppStatus, 0, len(e.apps)+len(e.tombstones))
	for _, a := range e.apps {
		out = append(out, a.currentStatus())
	}
	for _, t := range e.tombstones {
		out = append(out, cloneStatus(t.status))
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GetApp() < out[j].GetApp() })
	return out
}

// tombstone is the final status of a removed app and its number (see
// ChangedStatuses).
type tombstone struct {
	status *apiv1alpha1.AppStatus
	seq    uint64
}

// ChangedStatuses is Statuses without what the caller has already seen:
// seen maps a key per status (the app's name; name + "\x00removed" for a
// removed app's final status) to the number of the status the caller got
// last, and ChangedStatuses records in it those it returns. Each status
// an app publishes gets a new number, so a caller that keeps seen between
// calls (the hub client, per session) copies and compares only the apps
// that changed since, not all of them on every update. An app that has
// not published yet is always returned (its minimal status has no number).
func (e *Engine) ChangedStatuses(seen map[string]uint64) []*apiv1alpha1.AppStatus {
	var out []*apiv1alpha1.AppStatus
	e.mu.Lock()
	for name, a := range e.apps {
		st, seq := a.statusAfter(seen[name])
		if st == nil {
			continue
		}
		out = append(out, st)
		if seq != 0 {
			seen[name] = seq
		}
	}
	for name, t := range e.tombstones {
		k := name + "\x00removed"
		if seen[k] == t.seq {
			continue
		}
		out = append(out, cloneStatus(t.status))
		seen[k] = t.seq
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GetApp() < out[j].GetApp() })
	return out
}

// onEvent routes a watch event to the app whose tracking id the object
// carries, or carried before the update (someone removed it).
func (e *Engine) onEvent(ev live.Event) {
	id := ev.Obj.GetAnnotations()[manifest.TrackingAnnotation]
	if id == "" && ev.Old != nil {
		id = ev.Old.GetAnnotations()[manifest.TrackingAnnotation]
	}
	name, key, ok := manifest.ParseTrackingID(id)
	if !ok {
		return
	}
	e.mu.Lock()
	a := e.apps[name]
	e.mu.Unlock()
	if a != nil {
		a.markDirty(key)
	}
}

// holds reports whether the engine holds app name (not being removed).
func (e *Engine) holds(name string) bool {
	e.mu.Lock()
	a := e.apps[name]
	e.mu.Unlock()
	if a == nil {
		return false
	}
	_, removed := a.heldDigest()
	return !removed
}

// forget drops a removed app and records its tombstone.
func (e *Engine) forget(a *app, final *apiv1alpha1.AppStatus) {
	e.mu.Lock()
	if e.apps[a.name] == a {
		delete(e.apps, a.name)
	}
	e.tombstones[a.name] = tombstone{status: final, seq: e.statusSeq.Add(1)}
	e.mu.Unlock()
	e.notify.signal()
}
