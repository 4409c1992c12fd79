package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/project"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
)

// reconcile computes and publishes the desired state from what the repo
// workers and jobs last answered. It returns how many apps or targets are
// still waiting for a repo or a job.
func (c *Controller) reconcile(ctx context.Context) int {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	start := time.Now()
	gen := c.gen.Load() // before any input is read
	var in passInputs
	snap, desired, pending, err := c.compute(ctx, &in)
	c.mu.Lock()
	c.resyncKey = resyncKey{}
	if err == nil && pending == 0 {
		c.resyncKey = resyncKey{valid: true, gen: gen, dir: in.dir, clusters: in.clusters, windows: in.windows, at: c.opts.Now()}
	}
	renders := c.renders
	c.renders = 0
	if err != nil {
		// Keep the previous desired state and apps; report the error.
		prev := *c.snap
		prev.At, prev.Error = time.Now(), err.Error()
		c.snap = &prev
		c.mu.Unlock()
		var w waitingError
		if errors.As(err, &w) {
			c.log.Info("waiting for the apps repository", "repo", w.url)
		} else {
			c.log.Error("load definitions", "error", err)
		}
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
	c.log.Debug("reconciled", "duration", time.Since(start), "renders", renders, "pending", pending)
	return pending
}

// definitions loads the apps and cluster declarations from the configured
// sources. An error here means nothing is known for sure: the caller keeps
// its previous state. pending is true while the apps repo's definitions
// are still being fetched or loaded (the last ones loaded are used).
func (c *Controller) definitions(in *passInputs) (all app.Definitions, pending bool, err error) {
	if c.opts.AppsDir != "" {
		// The digest is taken first: an edit while the folder is loaded
		// shows as a change at the next resync.
		if in.dir, err = app.DigestDir(c.opts.AppsDir); err != nil {
			return all, false, err
		}
		d, err := app.LoadDir(c.opts.AppsDir)
		if err != nil {
			return all, false, err
		}
		all.Merge(d)
	}
	if c.opts.AppsRepo != "" {
		d, p, err := c.appsRepoDefinitions()
		if err != nil {
			return all, p, err
		}
		all.Merge(d)
		pending = p
	}
	// A name defined in the folder and in the repo: neither wins.
	all.DropDuplicates()
	return all, pending, nil
}

// appsRepoDefinitions returns the definitions of the apps repo at its
// revision; while they are fetched or loaded, the last ones loaded.
func (c *Controller) appsRepoDefinitions() (app.Definitions, bool, error) {
	repo := c.opts.AppsRepo
	commit, err, known := c.repos.commit(repo, c.opts.AppsRevision)
	var v any
	job := ""
	if known && err == nil {
		job = "defs\x00" + repo + "\x00" + commit
		v, err, known = c.jobs.get(job, "load definitions of "+repo, func(context.Context) (any, error) {
			root, err := c.git.Checkout(repo, commit)
			if err != nil {
				return nil, err
			}
			d, err := app.LoadDir(filepath.Join(root, filepath.FromSlash(c.opts.AppsPath)))
			if err != nil {
				return nil, fmt.Errorf("%s at %s: %w", repo, short(commit), err)
			}
			return d, nil
		})
	}
	c.mu.Lock()
	lastGood := c.appsDefs
	c.defsJob, c.defsCommit = job, ""
	if job != "" {
		c.defsCommit = commit
	}
	c.mu.Unlock()
	switch {
	case known && err == nil:
		d := v.(app.Definitions)
		c.mu.Lock()
		c.appsDefs = &d
		c.mu.Unlock()
		return d, false, nil
	case known:
		return app.Definitions{}, false, fmt.Errorf("apps repo: %w", err)
	case lastGood != nil:
		return *lastGood, true, nil
	default:
		// Nothing is known yet: the caller publishes nothing (no app is
		// removed from any cluster) until the definitions are loaded.
		return app.Definitions{}, true, waitingError{repo}
	}
}

// clusterList merges registered clusters with labels declared in git; git
// labels win for the keys they name.
func (c *Controller) clusterList(ctx context.Context, decls []app.ClusterDecl, in *passInputs) ([]target.Cluster, error) {
	var out []target.Cluster
	digest := newClusterDigest(c.seed)
	byName := map[string]int{}
	page := store.Page{Limit: store.MaxPageLimit}
	for {
		cs, next, err := c.store.ListClusters(ctx, page)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		for _, cl := range cs {
			digest.add(cl)
			byName[cl.Name] = len(out)
			out = append(out, target.Cluster{Name: cl.Name, Labels: maps.Clone(cl.Labels)})
		}
		if next == "" {
			break
		}
		page.After = next
	}
	in.clusters = digest.sum()
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

func (c *Controller) compute(ctx context.Context, in *passInputs) (*Snapshot, map[string]fleet.Desired, int, error) {
	defs, defsPending, err := c.definitions(in)
	if err != nil {
		return nil, nil, boolInt(defsPending), err
	}
	pending := boolInt(defsPending)
	// Apps defined by other apps' renders (app-of-apps) join the
	// definitions; a name already taken is an error on the child.
	c.mu.Lock()
	rendered := c.children
	c.mu.Unlock()
	taken := map[string]string{}
	for _, a := range defs.Apps {
		taken[a.Name] = a.File
	}
	defs.Merge(childDefinitions(rendered, taken))
	clusters, err := c.clusterList(ctx, defs.Clusters, in)
	if err != nil {
		return nil, nil, 0, err
	}
	// A broken definition (or ApplicationSet) leaves its apps as they
	// were; every other app takes effect.
	apps, setsBroken := defs.ResolveSets(toAppClusters(clusters))
	broken := append(slices.Clone(defs.Broken), setsBroken...)
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })

	c.mu.Lock()
	prev := c.snap
	c.mu.Unlock()
	prevTargets := map[pinKey]TargetState{}
	prevRevision := map[string]string{}
	prevRevisions := map[string][]string{}
	for _, as := range prev.Apps {
		prevRevision[as.Name] = as.Revision
		prevRevisions[as.Name] = as.Revisions
		for _, t := range as.Targets {
			prevTargets[pinKey{as.Name, t.Cluster}] = t
		}
	}

	projs, pwarns := compileProjects(defs, c.opts.ProjectsOff)
	now := c.opts.Now()
	var windowsChange time.Time
	snap := &Snapshot{At: time.Now(), Warnings: append(slices.Clone(defs.Warnings), pwarns...), Broken: broken}
	for _, cl := range clusters {
		cs := ClusterState{Name: cl.Name, Labels: cl.Labels}
		if caps := c.capabilitiesOf(cl.Name); caps != nil {
			cs.KubeVersion = caps.KubeVersion
		}
		snap.Clusters = append(snap.Clusters, cs)
	}
	desired := map[string]fleet.Desired{}
	objsByCluster := map[string]map[string]renderspec.AppObjects{}
	stateIdx := map[pinKey]*TargetState{}
	u := &usage{jobs: map[string]bool{}, commits: map[string]map[string]bool{}, unknown: map[string]bool{}}
	nextChildren := map[string][]*unstructured.Unstructured{}
	usedRollouts := map[string]bool{}

	for _, a := range apps {
		as := AppState{Name: a.Name, File: a.File, Spec: a.Spec, Set: a.Set, Parent: a.Parent}
		childrenFrom := "" // the children come from the app's first target
		policy, perr := syncPolicy(a)
		pol, err := projs.policyOf(a)
		if perr == nil && err != nil {
			perr = err
		}
		if perr == nil && pol.Orphaned != nil {
			policy.OrphanedResources = pol.Orphaned
		}
		if perr == nil {
			perr = pol.CheckSources(a)
			c.mu.Lock()
			c.appPolicy[a.Name] = pol // remote bases are held to it
			c.mu.Unlock()
		}
		if perr == nil && a.Spec.Destination.Hub {
			perr = pol.CheckHub()
		}
		if perr != nil {
			as.Error = fmt.Sprintf("%s: Application %s: %v", a.File, a.Name, perr)
		}
		if perr != nil {
			// Not even fetched: a repo the project forbids, or an app
			// without a usable project.
		} else if revs, err := c.sourceRevisions(a); err != nil && as.Error == "" {
			as.Error = err.Error()
		} else if revs != nil {
			as.Revision = bundleRevision(revs)
			if len(revs) > 1 {
				as.Revisions = revs
			}
		}
		inFlight := false
		var ro *rolloutEntry
		if perr == nil {
			var warn string
			ro, warn = c.rolloutFor(ctx, a, pol, as.Revision, targetsOf(a, clusters), prevTargets, now)
			if warn != "" {
				as.Warnings = append(as.Warnings, warn)
			}
		}
		if ro != nil || perr != nil {
			usedRollouts[a.Name] = true // an app with a project error keeps its rollout
		}
		for _, cl := range clusters {
			if !target.Targets(a, cl) {
				continue
			}
			hold, waiting := holdRevision(ro, cl)
			if desired[cl.Name] == nil {
				desired[cl.Name] = fleet.Desired{}
				objsByCluster[cl.Name] = map[string]renderspec.AppObjects{}
			}
			last := c.last[cl.Name][a.Name] // the last good bundle (nil: hold what the agent has)
			var (
				out  bundleResult
				ts   TargetState
				berr error
				done = true
			)
			ns := a.Spec.Destination.Namespace
			var derr error
			win := project.Windows{Automated: true, Manual: true}
			if pol != nil {
				derr = pol.CheckDestination(app.Cluster(cl), ns)
				win = pol.SyncWindows(a.Name, ns, cl.Name, now)
				windowsChange = nextWindow(windowsChange, win.Next)
			}
			switch {
			case perr != nil:
				ts, berr = TargetState{Cluster: cl.Name}, perr
			case derr != nil:
				ts, berr = TargetState{Cluster: cl.Name}, fmt.Errorf("spec.destination: %w", derr)
			default:
				out, ts, done, berr = c.bundleFor(a, cl, heldBy(policy, win), hold, u)
				if done && berr == nil {
					berr = c.checkRendered(pol, a, cl, out)
				}
			}
			if !win.Automated {
				ts.SyncWindow, ts.ManualSyncDenied = win.Reason, !win.Manual
			}
			b := out.bundle
			switch {
			case !done:
				// Rendering: show the last finished state of this target
				// (none yet: no revision, so nobody takes it as done).
				pending++
				inFlight = true
				if p, ok := prevTargets[pinKey{a.Name, cl.Name}]; ok {
					ts = p
				} else {
					ts.Revision = ""
				}
				b = last
			case berr != nil:
				var w waitingError
				if errors.As(berr, &w) {
					pending++
				}
				ts.Error = berr.Error()
				b = last
			default:
				objsByCluster[cl.Name][a.Name] = renderspec.AppObjects{Namespace: a.Spec.Destination.Namespace, Objects: out.objs}
			}
			if childrenFrom == "" {
				childrenFrom = cl.Name
				if done && berr == nil {
					if len(out.children) > 0 {
						nextChildren[a.Name] = out.children
					}
				} else if prev, ok := rendered[a.Name]; ok {
					nextChildren[a.Name] = prev // rendering or failed: the children stay
				}
			}
			ts.Rollout = waiting
			ts.Digest = b.GetDigest()
			desired[cl.Name][a.Name] = b
			as.Targets = append(as.Targets, ts)
		}
		if a.Spec.Destination.Hub && perr == nil {
			kids, done, ok := c.hubApp(a, policy, u, &as)
			switch {
			case ok:
				if len(kids) > 0 {
					nextChildren[a.Name] = kids
				}
			case !done:
				pending++
				inFlight = true
				fallthrough
			default:
				if prev, ok := rendered[a.Name]; ok {
					nextChildren[a.Name] = prev // rendering or failed: the children stay
				}
			}
		}
		if inFlight {
			as.Revision = prevRevision[a.Name] // the app moves once all its targets rendered
			as.Revisions = prevRevisions[a.Name]
		}
		as.Warnings = append(as.Warnings, unknownClusters(a, clusters)...)
		snap.Apps = append(snap.Apps, as)
		for i := range snap.Apps[len(snap.Apps)-1].Targets {
			t := &snap.Apps[len(snap.Apps)-1].Targets[i]
			stateIdx[pinKey{a.Name, t.Cluster}] = t
		}
	}
	c.scheduleWindows(windowsChange)
	in.windows = windowsChange
	c.holdBroken(snap, desired, apps, broken, prev)
	c.finishRollouts(ctx, snap, usedRollouts)
	if !sameChildren(rendered, nextChildren) {
		c.mu.Lock()
		c.children = nextChildren
		c.mu.Unlock()
		c.Trigger() // the new children are definitions of the next pass
	}
	sort.Slice(snap.Apps, func(i, j int) bool { return snap.Apps[i].Name < snap.Apps[j].Name })
	// Two apps claiming one object on one cluster: both keep their last good bundle.
	for cluster, byApp := range objsByCluster {
		if err := renderspec.CheckConflicts(byApp); err != nil {
			for _, appName := range conflictingApps(byApp) {
				desired[cluster][appName] = c.last[cluster][appName]
				if t := stateIdx[pinKey{appName, cluster}]; t != nil {
					t.Error = err.Error()
					t.Digest = desired[cluster][appName].GetDigest()
				}
			}
		}
	}
	// The apps repo's definitions job and checkout are in use too (the
	// apps repo is often also a source repo: its checkouts are shared).
	c.mu.Lock()
	defsJob, defsCommit := c.defsJob, c.defsCommit
	c.mu.Unlock()
	if defsJob != "" {
		u.jobs[defsJob] = true
		u.commit(c.opts.AppsRepo, defsCommit)
	}
	c.jobs.keepOnly(u.jobs)
	// Checkouts of commits no longer in use are removed (the render cache
	// keeps what was rendered from them); a repo some target still waits
	// for keeps all of its checkouts.
	for repo, commits := range u.commits {
		if u.unknown[repo] {
			continue
		}
		keep := map[string]bool{}
		for commit := range commits {
			keep[commit], keep[commit+".tmp"] = true, true // .tmp: a checkout being written
		}
		c.git.Prune(repo, keep)
	}
	return snap, desired, pending, nil
}

// sourceRevisions returns the commits a's sources resolved to (their
// untemplated revisions), nil while one is unknown, or the first error.
func (c *Controller) sourceRevisions(a *app.Application) ([]string, error) {
	srcs := a.Spec.AllSources()
	out := make([]string, len(srcs))
	for i, src := range srcs {
		rev, err, known := c.repos.commit(sourceKey(src), src.TargetRevision)
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, nil
		}
		out[i] = rev
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func toAppClusters(cs []target.Cluster) []app.Cluster {
	out := make([]app.Cluster, len(cs))
	for i, c := range cs {
		out[i] = app.Cluster(c)
	}
	return out
}

// holdBroken keeps the apps whose definition is broken as they were: an app
// named by a broken definition, or generated by a broken ApplicationSet,
// keeps its last state and its last good bundles on every cluster it had
// (nothing is pruned because a definition does not parse), with the
// definition's error on it. A broken definition of an app the hub never
// had shows as an app with that error and no clusters.
func (c *Controller) holdBroken(snap *Snapshot, desired map[string]fleet.Desired, apps []*app.Application, broken []app.Broken, prev *Snapshot) {
	good := map[string]bool{}
	for _, a := range apps {
		good[a.Name] = true
	}
	held := map[string]app.Broken{}
	for _, b := range broken {
		switch b.Kind {
		case app.KindApp:
			if b.Name != "" && !good[b.Name] {
				held[b.Name] = b
			}
		case app.KindAppSet:
			for _, as := range prev.Apps {
				if as.Set == b.Name && !good[as.Name] {
					held[as.Name] = b
				}
			}
		}
	}
	prevByName := map[string]AppState{}
	for _, as := range prev.Apps {
		prevByName[as.Name] = as
	}
	for name, b := range held {
		as, had := prevByName[name]
		if !had {
			as = AppState{Name: name, File: b.File}
		}
		as.Error = "definition not used: " + b.Error
		as.Broken = true
		targets := make([]TargetState, 0, len(as.Targets))
		for _, t := range as.Targets {
			last := c.last[t.Cluster][name]
			if last == nil {
				continue
			}
			if desired[t.Cluster] == nil {
				desired[t.Cluster] = fleet.Desired{}
			}
			desired[t.Cluster][name] = last
			t.Digest = last.GetDigest()
			targets = append(targets, t)
		}
		as.Targets = targets
		snap.Apps = append(snap.Apps, as)
	}
}

// unknownClusters warns about the clusters an app's destination names that
// this hub does not know (Argo CD shows such an app's destination as
// unknown; silently targeting nothing would hide a typo).
func unknownClusters(a *app.Application, clusters []target.Cluster) []string {
	var out []string
	for _, name := range a.Spec.Destination.Clusters {
		if !slices.ContainsFunc(clusters, func(c target.Cluster) bool { return c.Name == name }) {
			out = append(out, fmt.Sprintf("destination cluster %s is not registered with this hub (register it with `flotilla cluster add %s`)", name, name))
		}
	}
	return out
}

// sameChildren reports whether two renders of children hold the same
// objects (renders are cached: the same render gives the same objects).
func sameChildren(a, b map[string][]*unstructured.Unstructured) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// targetsOf returns the clusters a targets.
func targetsOf(a *app.Application, clusters []target.Cluster) []target.Cluster {
	var out []target.Cluster
	for _, cl := range clusters {
		if target.Targets(a, cl) {
			out = append(out, cl)
		}
	}
	return out
}
