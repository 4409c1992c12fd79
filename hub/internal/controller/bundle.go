package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartref"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// bundleResult is what a render job hands back.
type bundleResult struct {
	bundle *apiv1alpha1.Bundle
	objs   []*unstructured.Unstructured
	// children are the Applications and ApplicationSets the render holds
	// (app-of-apps): definitions for the hub, never sent to the cluster.
	children []*unstructured.Unstructured
}

// usage records what one reconcile used: job keys (their results are
// kept), commits per repo (their checkouts are kept) and repos some target
// still waits for.
type usage struct {
	jobs    map[string]bool
	commits map[string]map[string]bool
	unknown map[string]bool
}

func (u *usage) commit(repo, commit string) {
	if u.commits[repo] == nil {
		u.commits[repo] = map[string]bool{}
	}
	u.commits[repo][commit] = true
}

// bundleFor returns the bundle of a on cl from its render job. done is
// false while a repo has not answered or the job runs; err is the git,
// render or bundle error.
//
// hold, when not "", is the revision a rollout keeps cl at (a rollback pin
// wins over it); unlike a pin it leaves the sync policy as it is.
func (c *Controller) bundleFor(a *app.Application, cl target.Cluster, policy *apiv1alpha1.SyncPolicy, hold string, u *usage) (bundleResult, TargetState, bool, error) {
	ts := TargetState{Cluster: cl.Name}
	srcs, err := target.EffectiveSources(a, cl)
	if err != nil {
		return bundleResult{}, ts, true, err
	}
	c.mu.Lock()
	pin := c.pinOf(a.Name, cl.Name)
	c.mu.Unlock()
	if pin != "" {
		if len(srcs) > 1 {
			return bundleResult{}, ts, true, fmt.Errorf("app %s has several sources: rollback to one revision (%s) is not supported; unpin it", a.Name, pin)
		}
		// A rollback suspends auto-sync (and self-heal) until unpin: the
		// agent applies the pinned bundle only on a SYNC command.
		srcs[0].TargetRevision, ts.Pinned = pin, pin
		policy = proto.Clone(policy).(*apiv1alpha1.SyncPolicy)
		policy.Automated, policy.SelfHeal = false, false
	} else if hold != "" && len(srcs) == 1 {
		srcs[0].TargetRevision = hold
	}
	ts.Path = srcs[0].Path
	// Every source's revision is asked for at once, so that their repos
	// answer in parallel.
	commits := make([]string, len(srcs))
	var (
		waiting  bool
		firstErr error
	)
	for i, src := range srcs {
		commit, err, known := c.repos.commit(sourceKey(src), src.TargetRevision)
		switch {
		case !known:
			u.unknown[src.RepoURL] = true
			// waitingError: the repo never answered; nil: the revision is
			// being resolved. Either way a pin has not taken effect yet (a
			// rollback waits).
			ts.Pinned = ""
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				waiting = true
			}
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		default:
			if !src.IsChart() {
				u.commit(src.RepoURL, commit)
			}
			commits[i] = commit
		}
	}
	if firstErr != nil {
		return bundleResult{}, ts, true, firstErr
	}
	if waiting {
		return bundleResult{}, ts, false, nil
	}
	ts.Revision = bundleRevision(commits)
	if len(commits) > 1 {
		ts.Revisions = commits
	}
	var caps *renderspec.Capabilities
	if slices.ContainsFunc(srcs, mayBeHelm) || c.opts.KustomizeHelm && slices.ContainsFunc(srcs, mayBeKustomize) {
		// Helm renders per capability set; other kinds once for all.
		caps = c.capabilitiesOf(cl.Name)
		if cl.Name == hubTarget {
			caps = hubCapabilities
		}
	}
	remote, rwait := c.remoteCommits(a.Name, srcs, commits, u)
	if rwait {
		return bundleResult{}, ts, false, nil
	}
	key := jobKey(a, srcs, commits, policy, caps)
	if len(remote) > 0 {
		key += "+" + remoteKeyPart(remote)
	}
	u.jobs[key] = true
	v, err, done := c.jobs.get(key, fmt.Sprintf("app %s: render %s at %s", a.Name, srcs[0].Path, short(commits[0])), func(ctx context.Context) (any, error) {
		return c.build(ctx, a, srcs, commits, policy, caps)
	})
	if !done {
		return bundleResult{}, ts, false, nil
	}
	if errors.Is(err, errNoCapabilities) {
		return bundleResult{}, ts, true, capabilitiesWaitingError{cl.Name}
	}
	if errors.Is(err, errRemotePending) {
		return bundleResult{}, ts, false, nil // the next reconcile has the bases' commits in its key
	}
	if err != nil {
		return bundleResult{}, ts, true, err
	}
	out := v.(bundleResult)
	ts.Objects = len(out.objs)
	return out, ts, true, nil
}

// bundleRevision is the revision a bundle carries: the commit of a
// single-source app; the commits of every source, in order and joined by
// commas, for a multi-source app.
func bundleRevision(commits []string) string {
	return strings.Join(commits, ",")
}

// mayBeHelm reports whether src may be a Helm chart (which renders with
// the cluster's capabilities): its helm field is set, or no field says
// which kind it is and the files decide.
func mayBeHelm(src app.Source) bool {
	return src.Rendered() && (src.Helm != nil || (src.Directory == nil && src.Kustomize == nil))
}

// mayBeKustomize reports whether src may be a kustomization (whose
// helmCharts render with the cluster's capabilities).
func mayBeKustomize(src app.Source) bool {
	return src.Rendered() && src.Helm == nil && src.Directory == nil
}

// jobKey names everything a bundle is built from: caps are the target
// cluster's capabilities when a source may be a Helm chart (nil
// otherwise, or when the cluster has not reported them).
func jobKey(a *app.Application, srcs []app.Source, commits []string, policy *apiv1alpha1.SyncPolicy, caps *renderspec.Capabilities) string {
	capsDigest := ""
	if caps != nil {
		capsDigest = caps.Digest()
	}
	b, _ := json.Marshal(struct {
		App     string
		Dest    app.Destination
		Srcs    []app.Source
		Commits []string
		Policy  string
		Caps    string
	}{a.Name, a.Spec.Destination, srcs, commits, policyKey(policy, a), capsDigest})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// build checks out, renders and bundles one app at its sources' commits:
// the work of a render job, under the job's deadline. The objects of every
// rendered source are concatenated, in source order; an object rendered
// by two sources is an error naming both.
//
// A Helm chart renders with caps, the target cluster's capabilities; with
// none reported, build returns errNoCapabilities rather than guess. Other
// kinds of source render without them, once for every cluster.
func (c *Controller) build(ctx context.Context, a *app.Application, srcs []app.Source, commits []string, policy *apiv1alpha1.SyncPolicy, caps *renderspec.Capabilities) (bundleResult, error) {
	srcs = slices.Clone(srcs) // a chart source's Path is set to its folder below
	roots := make([]string, len(srcs))
	refs := map[string]string{}
	var refTrees []string
	for i, src := range srcs {
		if src.IsChart() {
			root, dir, err := c.chartRoot(ctx, src, commits[i])
			if err != nil {
				return bundleResult{}, err
			}
			roots[i], srcs[i].Path = root, dir
			continue
		}
		root, err := c.git.Checkout(src.RepoURL, commits[i])
		if err != nil {
			return bundleResult{}, err
		}
		roots[i] = root
		if src.Ref != "" {
			tree, err := c.git.TreeID(src.RepoURL, commits[i], "")
			if err != nil {
				return bundleResult{}, err
			}
			refs[src.Ref] = root
			refTrees = append(refTrees, src.Ref+"="+tree)
		}
	}
	var (
		objs, children []*unstructured.Unstructured
		keys           []string
		from           = map[manifest.Key]int{}
	)
	for i, src := range srcs {
		if !src.Rendered() {
			continue
		}
		what := fmt.Sprintf("render %s at %s", src.Path, short(commits[i]))
		if len(srcs) > 1 {
			what = fmt.Sprintf("spec.sources[%d]: %s", i, what)
		}
		in, key, err := c.renderInput(ctx, a, src, roots[i], commits[i], caps)
		if err != nil {
			return bundleResult{}, err
		}
		if usesRefs(src) {
			in.Refs = refs
			key = renderspec.CacheKey(key+"\x00refs\x00"+strings.Join(refTrees, "\x00"), in)
		}
		got, err := c.renderer.Render(ctx, key, in)
		if err != nil {
			return bundleResult{}, fmt.Errorf("%s: %w", what, err)
		}
		rest, kids := splitChildren(got)
		for _, o := range rest {
			k := manifest.KeyOf(o)
			if j, dup := from[k]; dup {
				return bundleResult{}, fmt.Errorf("%s: %s is also rendered by spec.sources[%d]", what, k, j)
			}
			from[k] = i
		}
		objs = append(objs, rest...)
		children = append(children, kids...)
		keys = append(keys, key)
	}
	if a.Spec.Destination.Hub {
		// Nothing goes to a cluster; hubApp names what should not be here.
	} else if err := checkScope(objs, a.Spec.Destination.Namespace, policy.GetScope()); err != nil {
		return bundleResult{}, fmt.Errorf("render %s at %s: %w", srcs[0].Path, short(commits[0]), err)
	}
	bkey := strings.Join(keys, "+") + "\x00" + a.Name + "\x00" + a.Spec.Destination.Namespace + "\x00" + policyKey(policy, a)
	c.mu.Lock()
	b, ok := c.bundles[bkey]
	c.mu.Unlock()
	if !ok {
		cp := append([]*unstructured.Unstructured(nil), objs...) // NewBundle sorts; cached slices are shared
		var err error
		b, err = manifest.NewBundle(a.Name, a.Spec.Destination.Namespace, bundleRevision(commits), srcs[0].Path, cp, policy, ignoreDifferences(a))
		if err != nil {
			return bundleResult{}, err
		}
		c.mu.Lock()
		c.renders++
		if len(c.bundles) > 4096 {
			clear(c.bundles)
		}
		c.bundles[bkey] = b
		c.mu.Unlock()
	}
	return bundleResult{bundle: b, objs: objs, children: children}, nil
}

// renderInput returns the render input of src, checked out at root, and
// its cache key. Plain directories read only under their path, so the
// path's tree id keys the render; Kustomize and Helm may read elsewhere
// in the repo (bases, value files), so the whole commit keys them.
func (c *Controller) renderInput(ctx context.Context, a *app.Application, src app.Source, root, commit string, caps *renderspec.Capabilities) (renderspec.Input, string, error) {
	treePath := src.Path
	if readsOutsidePath(root, src) {
		treePath = ""
	}
	tree := commit // a chart's reference names its archive's digest
	if !src.IsChart() {
		t, err := c.git.TreeID(src.RepoURL, commit, treePath)
		if err != nil {
			return renderspec.Input{}, "", err
		}
		tree = t
	}
	in := renderspec.Input{Root: root, Source: src, Namespace: a.Spec.Destination.Namespace, AppName: a.Name}
	if c.renderer.NeedsCapabilities(root, src) {
		if caps == nil {
			return renderspec.Input{}, "", errNoCapabilities
		}
		in.Capabilities = caps
	}
	if c.opts.KustomizeHelm && !src.IsChart() {
		kh, err := c.kustomizeHelm(ctx, root, src)
		if err != nil {
			return renderspec.Input{}, "", err
		}
		in.KustomizeHelm = kh
	}
	if c.opts.KustomizeRemoteBases && !src.IsChart() {
		rb, err := c.remoteBases(a.Name, root, src, commit)
		if err != nil {
			return renderspec.Input{}, "", err
		}
		in.RemoteBases = rb
	}
	return in, renderspec.CacheKey(tree, in), nil
}

// kustomizeHelm fetches the charts the helmCharts of src's kustomization
// (checked out at root) pull from repositories, through the hub's chart
// cache and credentials as chart sources do; nil when it has none. A
// version is looked up when the app renders (a new commit, capabilities
// or definition), not on every chart poll: pin exact versions.
func (c *Controller) kustomizeHelm(ctx context.Context, root string, src app.Source) (*renderspec.KustomizeHelm, error) {
	charts, inflates, err := c.renderer.KustomizeCharts(root, src)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", src.Path, err)
	}
	if !inflates {
		return nil, nil
	}
	kh := &renderspec.KustomizeHelm{Charts: map[string]string{}}
	for _, ch := range charts {
		if c.opts.Charts == nil {
			return nil, fmt.Errorf("kustomize %s: helmCharts %s from %s: charts from Helm repositories are not enabled on this hub", src.Path, ch.Name, ch.Repo)
		}
		ref, err := c.opts.Charts.Resolve(ctx, ch.Repo, ch.Name, ch.Version)
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: helmCharts: %w", src.Path, err)
		}
		dir, err := c.opts.Charts.Fetch(ctx, ch.Repo, ch.Name, ref)
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: helmCharts: %w", src.Path, err)
		}
		name, err := chartref.ChartDir(dir)
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: helmCharts %s %s from %s: no chart folder in the archive", src.Path, ch.Name, ref.Version, ch.Repo)
		}
		kh.Charts[ch.Key()] = filepath.Join(dir, name)
	}
	return kh, nil
}

// usesRefs reports whether src reads files of other sources ("$ref/...").
func usesRefs(src app.Source) bool {
	if src.Helm == nil {
		return false
	}
	for _, vf := range src.Helm.ValueFiles {
		if _, ok := app.ValueFileRef(vf); ok {
			return true
		}
	}
	return false
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// chartRoot fetches the chart of src at ref (cached by digest) and returns
// the folder holding it and the chart's folder name in it.
func (c *Controller) chartRoot(ctx context.Context, src app.Source, ref string) (string, string, error) {
	if c.opts.Charts == nil {
		return "", "", fmt.Errorf("chart %s from %s: charts from Helm repositories are not enabled on this hub", src.Chart, src.RepoURL)
	}
	r, err := chartref.Parse(ref)
	if err != nil {
		return "", "", err
	}
	root, err := c.opts.Charts.Fetch(ctx, src.RepoURL, src.Chart, r)
	if err != nil {
		return "", "", err
	}
	dir, err := chartref.ChartDir(root)
	if err != nil {
		return "", "", fmt.Errorf("chart %s %s from %s: no chart folder in the archive", src.Chart, r.Version, src.RepoURL)
	}
	return root, dir, nil
}
