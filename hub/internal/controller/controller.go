package controller

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Options say where definitions come from.
type Options struct {
	// AppsDir is a local folder of definitions.
	AppsDir string
	// AppsRepo, AppsPath and AppsRevision name a root git source of
	// definitions (app of apps).
	AppsRepo, AppsPath, AppsRevision string
	// Resync re-evaluates everything at this interval even without a git
	// change (picks up edits in AppsDir); default 30s.
	Resync time.Duration
	// OnReconcile, when set, observes each reconcile (metrics).
	OnReconcile func(d time.Duration, renders int, err error)
}

// Store is what the controller reads and keeps in the hub's store: the
// registered clusters and the rollback pins.
type Store interface {
	ListClusters(ctx context.Context, p store.Page) ([]store.Cluster, string, error)
	PutPin(ctx context.Context, p store.Pin) error
	DeletePins(ctx context.Context, app, cluster string) error
	ListPins(ctx context.Context) ([]store.Pin, error)
}

var _ Store = (*store.Bolt)(nil)

// Controller is safe for concurrent use.
type Controller struct {
	opts     Options
	git      *gitsource.Manager
	renderer *render.Renderer
	fleet    *fleet.Fleet
	store    Store
	log      hclog.Logger

	kick chan struct{}

	mu         sync.Mutex
	snap       *Snapshot
	last       map[string]fleet.Desired       // last desired state, for last-good holding
	bundles    map[string]*apiv1alpha1.Bundle // bundle cache: render key + app policy → bundle
	pins       map[pinKey]string              // rollback pins: (app, cluster) → revision
	pinsLoaded bool
	renders    int
}

type pinKey struct{ app, cluster string }

// New returns a Controller.
func New(opts Options, git *gitsource.Manager, r *render.Renderer, fl *fleet.Fleet, st Store, log hclog.Logger) *Controller {
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	return &Controller{
		opts: opts, git: git, renderer: r, fleet: fl, store: st, log: log,
		kick:    make(chan struct{}, 1),
		last:    map[string]fleet.Desired{},
		bundles: map[string]*apiv1alpha1.Bundle{},
		pins:    map[pinKey]string{},
		snap:    &Snapshot{},
	}
}

// Trigger asks for a reconcile soon (a cluster changed, a refresh was asked).
func (c *Controller) Trigger() {
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

// loadPins reads the pins kept in the store.
func (c *Controller) loadPins(ctx context.Context) error {
	pins, err := c.store.ListPins(ctx)
	if err != nil {
		return fmt.Errorf("load pins: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pins {
		c.pins[pinKey{p.App, p.Cluster}] = p.Revision
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
// Resync, until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.loadPins(ctx); err != nil {
		return err
	}
	t := time.NewTicker(c.opts.Resync)
	defer t.Stop()
	for {
		c.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-c.git.Changes():
		case <-c.kick:
		case <-t.C:
		}
	}
}

// ReconcileNow runs one reconcile synchronously (tests and benchmarks).
func (c *Controller) ReconcileNow(ctx context.Context) *Snapshot {
	c.mu.Lock()
	loaded := c.pinsLoaded
	c.pinsLoaded = true
	c.mu.Unlock()
	if !loaded {
		if err := c.loadPins(ctx); err != nil {
			c.log.Error("load pins", "error", err)
		}
	}
	c.reconcile(ctx)
	return c.Snapshot()
}

func (c *Controller) reconcile(ctx context.Context) {
	start := time.Now()
	c.mu.Lock()
	c.renders = 0
	c.mu.Unlock()
	snap, desired, err := c.compute(ctx)
	c.mu.Lock()
	renders := c.renders
	if err != nil {
		// Keep the previous desired state and apps; report the error.
		prev := *c.snap
		prev.At, prev.Error = time.Now(), err.Error()
		c.snap = &prev
		c.mu.Unlock()
		c.log.Error("load definitions", "error", err)
	} else {
		prevWarnings := c.snap.Warnings
		c.snap = snap
		c.last = desired
		c.mu.Unlock()
		c.fleet.SetAll(desired)
		if !slices.Equal(prevWarnings, snap.Warnings) {
			for _, w := range snap.Warnings {
				c.log.Warn("definition warning", "warning", w)
			}
		}
	}
	if c.opts.OnReconcile != nil {
		c.opts.OnReconcile(time.Since(start), renders, err)
	}
	c.log.Debug("reconciled", "duration", time.Since(start), "renders", renders)
}

// definitions loads the apps and cluster declarations from the configured
// sources. An error here means nothing is known for sure: the caller keeps
// its previous state.
func (c *Controller) definitions(ctx context.Context) (app.Definitions, error) {
	var all app.Definitions
	if c.opts.AppsDir != "" {
		d, err := app.LoadDir(c.opts.AppsDir)
		if err != nil {
			return all, err
		}
		all = merge(all, d)
	}
	if c.opts.AppsRepo != "" {
		if err := c.git.Track(ctx, c.opts.AppsRepo); err != nil {
			return all, fmt.Errorf("apps repo: %w", err)
		}
		commit, err := c.git.Resolve(c.opts.AppsRepo, c.opts.AppsRevision)
		if err != nil {
			return all, fmt.Errorf("apps repo: %w", err)
		}
		root, err := c.git.Checkout(c.opts.AppsRepo, commit)
		if err != nil {
			return all, fmt.Errorf("apps repo: %w", err)
		}
		d, err := app.LoadDir(filepath.Join(root, filepath.FromSlash(c.opts.AppsPath)))
		if err != nil {
			return all, fmt.Errorf("apps repo %s at %s: %w", c.opts.AppsRepo, commit[:12], err)
		}
		all = merge(all, d)
	}
	seen := map[string]string{}
	for _, a := range all.Apps {
		if f, ok := seen[a.Name]; ok {
			return all, fmt.Errorf("application %q is defined twice: in %s and in %s", a.Name, f, a.File)
		}
		seen[a.Name] = a.File
	}
	return all, nil
}

func merge(a, b app.Definitions) app.Definitions {
	a.Apps = append(a.Apps, b.Apps...)
	a.AppSets = append(a.AppSets, b.AppSets...)
	a.Clusters = append(a.Clusters, b.Clusters...)
	a.Warnings = append(a.Warnings, b.Warnings...)
	return a
}

// clusterList merges registered clusters with labels declared in git; git
// labels win for the keys they name.
func (c *Controller) clusterList(ctx context.Context, decls []app.ClusterDecl) ([]target.Cluster, error) {
	var out []target.Cluster
	byName := map[string]int{}
	page := store.Page{Limit: store.MaxPageLimit}
	for {
		cs, next, err := c.store.ListClusters(ctx, page)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		for _, cl := range cs {
			byName[cl.Name] = len(out)
			out = append(out, target.Cluster{Name: cl.Name, Labels: maps.Clone(cl.Labels)})
		}
		if next == "" {
			break
		}
		page.After = next
	}
	for _, d := range decls {
		i, ok := byName[d.Name]
		if !ok {
			continue // declared but not enrolled: no agent to send to
		}
		if out[i].Labels == nil {
			out[i].Labels = map[string]string{}
		}
		maps.Copy(out[i].Labels, d.Labels)
	}
	return out, nil
}

func (c *Controller) compute(ctx context.Context) (*Snapshot, map[string]fleet.Desired, error) {
	defs, err := c.definitions(ctx)
	if err != nil {
		return nil, nil, err
	}
	clusters, err := c.clusterList(ctx, defs.Clusters)
	if err != nil {
		return nil, nil, err
	}
	apps, err := defs.Resolve(toAppClusters(clusters))
	if err != nil {
		// A broken ApplicationSet leaves its apps out; every other app stays.
		defs.Warnings = append(defs.Warnings, err.Error())
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })

	snap := &Snapshot{At: time.Now(), Warnings: defs.Warnings}
	for _, cl := range clusters {
		snap.Clusters = append(snap.Clusters, ClusterState{Name: cl.Name, Labels: cl.Labels})
	}
	desired := map[string]fleet.Desired{}
	objsByCluster := map[string]map[string]render.AppObjects{}
	stateIdx := map[pinKey]*TargetState{}
	m := newMemo(c.git)

	for _, a := range apps {
		as := AppState{Name: a.Name, File: a.File, Spec: a.Spec}
		policy, perr := syncPolicy(a)
		if perr != nil {
			as.Error = fmt.Sprintf("%s: Application %s: %v", a.File, a.Name, perr)
		}
		if err := m.track(ctx, a.Spec.Source.RepoURL); err != nil && as.Error == "" {
			as.Error = err.Error()
		}
		if rev, err := m.resolve(a.Spec.Source.RepoURL, a.Spec.Source.TargetRevision); err == nil {
			as.Revision = rev
		} else if as.Error == "" {
			as.Error = err.Error()
		}
		for _, cl := range clusters {
			if !target.Targets(a, cl) {
				continue
			}
			if desired[cl.Name] == nil {
				desired[cl.Name] = fleet.Desired{}
				objsByCluster[cl.Name] = map[string]render.AppObjects{}
			}
			ts := TargetState{Cluster: cl.Name}
			var b *apiv1alpha1.Bundle
			var objs []*unstructured.Unstructured
			var berr error
			if perr != nil {
				berr = perr
			} else {
				b, objs, ts, berr = c.bundleFor(ctx, m, a, cl, policy)
			}
			if berr != nil {
				ts.Error = berr.Error()
				b = c.last[cl.Name][a.Name] // hold the last good bundle (nil: hold what the agent has)
			} else {
				objsByCluster[cl.Name][a.Name] = render.AppObjects{Namespace: a.Spec.Destination.Namespace, Objects: objs}
			}
			if b != nil {
				ts.Digest = b.GetDigest()
			}
			desired[cl.Name][a.Name] = b
			as.Targets = append(as.Targets, ts)
		}
		snap.Apps = append(snap.Apps, as)
		for i := range snap.Apps[len(snap.Apps)-1].Targets {
			t := &snap.Apps[len(snap.Apps)-1].Targets[i]
			stateIdx[pinKey{a.Name, t.Cluster}] = t
		}
	}
	// Two apps claiming one object on one cluster: both keep their last good bundle.
	for cluster, byApp := range objsByCluster {
		if err := render.CheckConflicts(byApp); err != nil {
			for _, appName := range conflictingApps(byApp) {
				desired[cluster][appName] = c.last[cluster][appName]
				if t := stateIdx[pinKey{appName, cluster}]; t != nil {
					t.Error = err.Error()
					t.Digest = desired[cluster][appName].GetDigest()
				}
			}
		}
	}
	// Checkouts of commits no longer in use are removed; the render cache
	// keeps what was rendered from them.
	for repo, commits := range m.keep() {
		if repo == c.opts.AppsRepo {
			continue
		}
		c.git.Prune(repo, commits)
	}
	return snap, desired, nil
}

func toAppClusters(cs []target.Cluster) []app.Cluster {
	out := make([]app.Cluster, len(cs))
	for i, c := range cs {
		out[i] = app.Cluster{Name: c.Name, Labels: c.Labels}
	}
	return out
}

// bundleFor renders (through the cache) and builds the bundle of a on cl.
func (c *Controller) bundleFor(ctx context.Context, m *memo, a *app.Application, cl target.Cluster, policy *apiv1alpha1.SyncPolicy) (*apiv1alpha1.Bundle, []*unstructured.Unstructured, TargetState, error) {
	ts := TargetState{Cluster: cl.Name}
	src, err := target.Effective(a, cl)
	if err != nil {
		return nil, nil, ts, err
	}
	c.mu.Lock()
	pin := c.pinOf(a.Name, cl.Name)
	c.mu.Unlock()
	rev := src.TargetRevision
	if pin != "" {
		// A rollback suspends auto-sync (and self-heal) until unpin: the
		// agent applies the pinned bundle only on a SYNC command.
		rev, ts.Pinned = pin, pin
		policy = proto.Clone(policy).(*apiv1alpha1.SyncPolicy)
		policy.Automated, policy.SelfHeal = false, false
	}
	ts.Path = src.Path
	if err := m.track(ctx, src.RepoURL); err != nil {
		return nil, nil, ts, err
	}
	commit, err := m.resolve(src.RepoURL, rev)
	if err != nil {
		return nil, nil, ts, err
	}
	ts.Revision = commit
	// Plain directories read only under their path, so the path's tree id
	// keys the render; Kustomize and Helm may read elsewhere in the repo
	// (bases, value files), so the whole commit keys them.
	root, err := m.checkout(src.RepoURL, commit)
	if err != nil {
		return nil, nil, ts, err
	}
	treePath := src.Path
	if readsOutsidePath(root, src) {
		treePath = ""
	}
	tree, err := m.tree(src.RepoURL, commit, treePath)
	if err != nil {
		return nil, nil, ts, err
	}
	in := render.Input{Root: root, Source: src, Namespace: a.Spec.Destination.Namespace, AppName: a.Name}
	key := render.CacheKey(tree, in)
	objs, err := c.renderer.Render(ctx, key, in)
	if err != nil {
		return nil, nil, ts, fmt.Errorf("render %s at %s: %w", src.Path, short(commit), err)
	}
	ts.Objects = len(objs)
	bkey := key + "\x00" + a.Name + "\x00" + a.Spec.Destination.Namespace + "\x00" + policyKey(policy, a)
	c.mu.Lock()
	b, ok := c.bundles[bkey]
	c.mu.Unlock()
	if !ok {
		c.mu.Lock()
		c.renders++
		c.mu.Unlock()
		cp := append([]*unstructured.Unstructured(nil), objs...) // NewBundle sorts; cached slices are shared
		b, err = manifest.NewBundle(a.Name, a.Spec.Destination.Namespace, commit, src.Path, cp, policy, ignoreDifferences(a))
		if err != nil {
			return nil, nil, ts, err
		}
		c.mu.Lock()
		if len(c.bundles) > 4096 {
			clear(c.bundles)
		}
		c.bundles[bkey] = b
		c.mu.Unlock()
	}
	return b, objs, ts, nil
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
