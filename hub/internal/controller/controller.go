package controller

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/project"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Options say where definitions come from.
type Options struct {
	// AppsDir is a local folder of definitions.
	AppsDir string
	// AppsRepo, AppsPath and AppsRevision name a root git source of
	// definitions (app of apps).
	AppsRepo, AppsPath, AppsRevision string
	// Resync re-evaluates everything at this interval even without a git
	// change (picks up edits in AppsDir, clusters changed in the store
	// without an event here); default 30s. A resync pass whose inputs are
	// what the last pass read is skipped (see resyncSkippable).
	Resync time.Duration
	// OnReconcile, when set, observes each reconcile (metrics).
	OnReconcile func(d time.Duration, renders int, err error)
	// RenderWorkers bounds the checkouts and renders running at once;
	// default max(2, GOMAXPROCS).
	RenderWorkers int
	// RenderTimeout bounds one checkout and render of one app (a job); a
	// job still running then is reported failed, its slot freed, and the
	// app keeps its last good bundle; default 2m.
	RenderTimeout time.Duration
	// Charts fetches charts from Helm repositories (nil: apps with a
	// chart source get an error saying so).
	Charts ChartSource
	// ChartPoll is how often the versions of each chart source are
	// looked up again (a new version matching its constraint rolls out);
	// default PollDefault.
	ChartPoll time.Duration
	// KustomizeHelm inflates kustomizations' helmCharts (off: an error
	// on the app naming the kustomization); their charts from
	// repositories come through Charts.
	KustomizeHelm bool
	// KustomizeRemoteBases fetches kustomizations' remote bases (git
	// repositories in resources, bases and components) through the hub's
	// git mirrors and credentials (off: an error on the app naming the
	// kustomization and the entry).
	KustomizeRemoteBases bool
	// ProjectsOff switches project enforcement off: every app is treated
	// as in an allow-all project (no repo, destination, kind or sync
	// window rule). For tests and migration only; the agents' own
	// policies still apply.
	ProjectsOff bool
	// Now is the clock sync windows and rollouts are read with; default
	// time.Now.
	Now func() time.Time
	// OnRolloutEvent, when set, observes every rollout event (event
	// stream, metrics, history). It must not block or call back into the
	// controller.
	OnRolloutEvent func(context.Context, rollout.Event)
	// FollowRollouts: this hub shares its store with others and does not
	// decide rollouts until LeadRollouts(true) (it took the Lease); it
	// renders every cluster by the stored rollout state.
	FollowRollouts bool
}

// PollDefault is the default of Options.ChartPoll.
const PollDefault = 60 * time.Second

// DefaultRenderTimeout is the default of Options.RenderTimeout.
const DefaultRenderTimeout = 2 * time.Minute

// Store is what the controller reads and keeps in the hub's store: the
// registered clusters, the rollback pins, the clusters' capabilities and
// the apps' rollouts.
type Store interface {
	ListClusters(ctx context.Context, p store.Page) ([]store.Cluster, string, error)
	PutPin(ctx context.Context, p store.Pin) error
	DeletePins(ctx context.Context, app, cluster string) error
	ListPins(ctx context.Context) ([]store.Pin, error)
	PutCapabilities(ctx context.Context, c store.ClusterCapabilities) error
	ListCapabilities(ctx context.Context) ([]store.ClusterCapabilities, error)
	PutRollout(ctx context.Context, r store.RolloutRecord) error
	UpdateRollout(ctx context.Context, app string, fn func(cur *store.RolloutRecord) (*store.RolloutRecord, error)) error
	DeleteRollout(ctx context.Context, app string) error
	ListRollouts(ctx context.Context) ([]store.RolloutRecord, error)
}

// The Kubernetes store (package kubestore) is checked in package server,
// so that the controller does not link client-go.
var _ Store = (*store.Bolt)(nil)

// Controller is safe for concurrent use.
type Controller struct {
	opts     Options
	git      *gitsource.Manager
	renderer Renderer
	fleet    *fleet.Fleet
	store    Store
	log      hclog.Logger

	kick     chan struct{} // buffered 1: reconcile soon
	progress chan struct{} // buffered 1: a repo or job finished (ReconcileNow)
	repos    *repos
	jobs     *jobs
	passMu   sync.Mutex // one reconcile at a time

	mu         sync.Mutex
	snap       *Snapshot
	last       map[string]fleet.Desired            // last desired state, for last-good holding
	bundles    map[string]*apiv1alpha1.Bundle      // bundle cache: render key + app policy → bundle
	pins       map[pinKey]string                   // rollback pins: (app, cluster) → revision
	caps       map[string]*renderspec.Capabilities // cluster → what its agent last reported
	capSets    map[string]*renderspec.Capabilities // digest → the one shared copy of a set
	pinsLoaded bool
	renders    int
	appsDefs   *app.Definitions // last definitions loaded from AppsRepo
	// defsJob and defsCommit are the job and commit of the apps repo's
	// definitions the last pass asked for: the pass keeps the job's
	// result and the commit's checkout.
	defsJob, defsCommit string
	// children are the Applications each parent app last rendered
	// (app-of-apps), taken as definitions by the next reconcile.
	children map[string][]*unstructured.Unstructured
	// remoteLists are the remote bases discovered per source commit
	// (remoteListKey); remoteRepos their repositories per app.
	remoteLists map[string][]renderspec.RemoteBase
	remoteRepos map[string][]string
	// appPolicy is each app's project as of the last reconcile: its
	// sourceRepos bound the remote bases the hub fetches for the app.
	appPolicy map[string]*project.Policy
	// windowTimer triggers a reconcile when a sync window opens or closes.
	windowTimer *time.Timer
	// rollouts are the apps' progressive rollouts (also in the store);
	// rolloutTimer triggers a reconcile when a soak ends, a deadline
	// passes or a gate check is due.
	rollouts     map[string]*rolloutEntry
	rolloutTimer *time.Timer
	follow       atomic.Bool // another hub decides rollouts (Options.FollowRollouts)

	// gen moves on every Trigger: an input changed in this process.
	gen atomic.Uint64
	// resyncKey is what the last clean pass read (see resyncSkippable);
	// seed keys its cluster digest.
	resyncKey resyncKey
	seed      maphash.Seed
}

type pinKey struct{ app, cluster string }

// New returns a Controller.
func New(opts Options, git *gitsource.Manager, r Renderer, fl *fleet.Fleet, st Store, log hclog.Logger) *Controller {
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.RenderWorkers <= 0 {
		opts.RenderWorkers = max(2, runtime.GOMAXPROCS(0))
	}
	if opts.RenderTimeout <= 0 {
		opts.RenderTimeout = DefaultRenderTimeout
	}
	c := &Controller{
		opts: opts, git: git, renderer: r, fleet: fl, store: st, log: log,
		kick:     make(chan struct{}, 1),
		progress: make(chan struct{}, 1),
		last:     map[string]fleet.Desired{},
		bundles:  map[string]*apiv1alpha1.Bundle{},
		pins:     map[pinKey]string{},
		caps:     map[string]*renderspec.Capabilities{},
		capSets:  map[string]*renderspec.Capabilities{},
		rollouts: map[string]*rolloutEntry{},
		snap:     &Snapshot{},
		seed:     maphash.MakeSeed(),

		remoteLists: map[string][]renderspec.RemoteBase{},
		remoteRepos: map[string][]string{},
		appPolicy:   map[string]*project.Policy{},
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ChartPoll <= 0 {
		opts.ChartPoll = PollDefault
	}
	c.opts = opts
	c.follow.Store(opts.FollowRollouts)
	c.repos = newRepos(git, c.workDone)
	c.repos.charts, c.repos.chartPoll = opts.Charts, opts.ChartPoll
	c.jobs = newJobs(opts.RenderWorkers, opts.RenderTimeout, opts.Resync, c.workDone)
	return c
}

// workDone is called when a repo worker or a job has a new answer.
func (c *Controller) workDone() {
	c.Trigger()
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// Trigger asks for a reconcile soon (a cluster changed, a refresh was asked).
func (c *Controller) Trigger() {
	c.gen.Add(1)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Snapshot returns the result of the last reconcile.
func (c *Controller) Snapshot() *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// Pin makes (app, cluster) follow revision instead of its targetRevision
// (rollback); cluster "" pins every cluster. Revision "" unpins (with
// cluster "", every pin of the app). Pins are kept in the store and survive
// a hub restart.
func (c *Controller) Pin(ctx context.Context, appName, cluster, revision string) error {
	var err error
	if revision == "" {
		err = c.store.DeletePins(ctx, appName, cluster)
	} else {
		err = c.store.PutPin(ctx, store.Pin{App: appName, Cluster: cluster, Revision: revision, CreatedAt: time.Now()})
	}
	if err != nil {
		return fmt.Errorf("pin %s: %w", appName, err)
	}
	c.mu.Lock()
	if revision == "" {
		delete(c.pins, pinKey{appName, cluster})
		if cluster == "" {
			for k := range c.pins {
				if k.app == appName {
					delete(c.pins, k)
				}
			}
		}
	} else {
		c.pins[pinKey{appName, cluster}] = revision
	}
	c.mu.Unlock()
	c.Trigger()
	return nil
}

// ReplacePins takes pins as the whole set (another hub sharing the store
// changed them) and reconciles.
func (c *Controller) ReplacePins(pins []store.Pin) {
	c.mu.Lock()
	c.pins = make(map[pinKey]string, len(pins))
	for _, p := range pins {
		c.pins[pinKey{p.App, p.Cluster}] = p.Revision
	}
	c.mu.Unlock()
	c.Trigger()
}

// loadPins reads the pins and the clusters' capabilities kept in the
// store.
func (c *Controller) loadPins(ctx context.Context) error {
	pins, err := c.store.ListPins(ctx)
	if err != nil {
		return fmt.Errorf("load pins: %w", err)
	}
	caps, err := c.store.ListCapabilities(ctx)
	if err != nil {
		return fmt.Errorf("load cluster capabilities: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pins {
		c.pins[pinKey{p.App, p.Cluster}] = p.Revision
	}
	for _, sc := range caps {
		if _, ok := c.caps[sc.Cluster]; ok {
			continue // reported since
		}
		rc, err := renderspec.NewCapabilities(sc.KubeVersion, sc.APIVersions)
		if err != nil {
			c.log.Warn("stored capabilities ignored", "cluster", sc.Cluster, "error", err)
			continue
		}
		c.caps[sc.Cluster] = c.internCapabilities(rc)
	}
	return nil
}

func (c *Controller) pinOf(appName, cluster string) string {
	if r, ok := c.pins[pinKey{appName, cluster}]; ok {
		return r
	}
	return c.pins[pinKey{appName, ""}]
}

// Run reconciles on start, on every git change, on Trigger and every
// Resync, until ctx ends. Git and render work runs in workers (see repos
// and jobs); a reconcile only reads their last answers, so one slow repo or
// render never delays another app. When ctx ends, Run waits a few seconds
// for the workers and then returns even if some are stuck.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.loadPins(ctx); err != nil {
		return err
	}
	if err := c.loadRollouts(ctx); err != nil {
		return err
	}
	c.startWorkers(ctx)
	t := time.NewTicker(c.opts.Resync)
	defer t.Stop()
	reports, stop := c.fleet.WatchReports()
	defer stop()
	pass := true
	for {
		if pass {
			c.reconcile(ctx)
		}
		pass = true
		select {
		case <-ctx.Done():
			c.stopWorkers(ctx)
			return nil
		case <-c.git.Changes():
			// The repo workers resolve again and trigger a reconcile
			// when something moved.
			c.repos.kickAll()
			pass = false
		case <-c.kick:
		case <-reports:
			// An agent's report may move a rollout (a step's clusters
			// Healthy, a reached cluster Degraded).
			pass = c.rolloutsActive()
		case <-t.C:
			c.repos.kickAll()
			if c.resyncSkippable(ctx) {
				c.log.Debug("resync: no input changed since the last pass; skipped")
				pass = false
			}
		}
	}
}

// ShutdownGrace is how long Run waits for git and render workers after its
// context ended.
const ShutdownGrace = 3 * time.Second

func (c *Controller) startWorkers(ctx context.Context) {
	c.repos.start(ctx)
	c.jobs.start(ctx)
}

func (c *Controller) stopWorkers(ctx context.Context) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	if !c.repos.wait(wctx) || !c.jobs.wait(wctx) {
		c.log.Warn("git or render work still running at shutdown; not waiting for it", "grace", ShutdownGrace)
	}
}

// ReconcileNow reconciles synchronously until every repo answered and
// every render finished, or ctx ends (tests and benchmarks).
func (c *Controller) ReconcileNow(ctx context.Context) *Snapshot {
	c.mu.Lock()
	loaded := c.pinsLoaded
	c.pinsLoaded = true
	c.mu.Unlock()
	if !loaded {
		if err := c.loadPins(ctx); err != nil {
			c.log.Error("load pins", "error", err)
		}
		if err := c.loadRollouts(ctx); err != nil {
			c.log.Error("load rollouts", "error", err)
		}
	}
	c.startWorkers(ctx)
	c.repos.refreshNow(ctx)
	for {
		if c.reconcile(ctx) == 0 {
			return c.Snapshot()
		}
		select {
		case <-ctx.Done():
			return c.Snapshot()
		case <-c.progress:
		}
	}
}
