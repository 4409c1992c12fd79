package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
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
// false while the repo has not answered or the job runs; err is the git,
// render or bundle error.
func (c *Controller) bundleFor(a *app.Application, cl target.Cluster, policy *apiv1alpha1.SyncPolicy, u *usage) (bundleResult, TargetState, bool, error) {
	ts := TargetState{Cluster: cl.Name}
	src, err := target.Effective(a, cl)
	if err != nil {
		return bundleResult{}, ts, true, err
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
	commit, err, known := c.repos.commit(src.RepoURL, rev)
	if !known {
		u.unknown[src.RepoURL] = true
		// waitingError: the repo never answered; nil: rev is being resolved.
		// Either way the pin has not taken effect yet (a rollback waits).
		ts.Pinned = ""
		return bundleResult{}, ts, err != nil, err
	}
	if err != nil {
		return bundleResult{}, ts, true, err
	}
	ts.Revision = commit
	u.commit(src.RepoURL, commit)
	var caps *render.Capabilities
	if mayBeHelm(src) {
		// Helm renders per capability set; other kinds once for all.
		caps = c.capabilitiesOf(cl.Name)
	}
	key := jobKey(a, src, commit, policy, caps)
	u.jobs[key] = true
	v, err, done := c.jobs.get(key, fmt.Sprintf("app %s: render %s at %s", a.Name, src.Path, short(commit)), func(ctx context.Context) (any, error) {
		return c.build(ctx, a, src, commit, policy, caps)
	})
	if !done {
		return bundleResult{}, ts, false, nil
	}
	if errors.Is(err, errNoCapabilities) {
		return bundleResult{}, ts, true, capabilitiesWaitingError{cl.Name}
	}
	if err != nil {
		return bundleResult{}, ts, true, err
	}
	out := v.(bundleResult)
	ts.Objects = len(out.objs)
	return out, ts, true, nil
}

// mayBeHelm reports whether src may be a Helm chart (which renders with
// the cluster's capabilities): its helm field is set, or no field says
// which kind it is and the files decide.
func mayBeHelm(src app.Source) bool {
	return src.Helm != nil || (src.Directory == nil && src.Kustomize == nil)
}

// jobKey names everything a bundle is built from: caps are the target
// cluster's capabilities for a source that may be a Helm chart (nil
// otherwise, or when the cluster has not reported them).
func jobKey(a *app.Application, src app.Source, commit string, policy *apiv1alpha1.SyncPolicy, caps *render.Capabilities) string {
	capsDigest := ""
	if caps != nil {
		capsDigest = caps.Digest()
	}
	b, _ := json.Marshal(struct {
		App    string
		Dest   app.Destination
		Src    app.Source
		Commit string
		Policy string
		Caps   string
	}{a.Name, a.Spec.Destination, src, commit, policyKey(policy, a), capsDigest})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// build checks out, renders and bundles one app at one commit: the work of
// a render job, under the job's deadline.
//
// A Helm chart renders with caps, the target cluster's capabilities; with
// none reported, build returns errNoCapabilities rather than guess. Other
// kinds of source render without them, once for every cluster.
func (c *Controller) build(ctx context.Context, a *app.Application, src app.Source, commit string, policy *apiv1alpha1.SyncPolicy, caps *render.Capabilities) (bundleResult, error) {
	// Plain directories read only under their path, so the path's tree id
	// keys the render; Kustomize and Helm may read elsewhere in the repo
	// (bases, value files), so the whole commit keys them.
	root, err := c.git.Checkout(src.RepoURL, commit)
	if err != nil {
		return bundleResult{}, err
	}
	treePath := src.Path
	if readsOutsidePath(root, src) {
		treePath = ""
	}
	tree, err := c.git.TreeID(src.RepoURL, commit, treePath)
	if err != nil {
		return bundleResult{}, err
	}
	in := render.Input{Root: root, Source: src, Namespace: a.Spec.Destination.Namespace, AppName: a.Name}
	if render.NeedsCapabilities(root, src) {
		if caps == nil {
			return bundleResult{}, errNoCapabilities
		}
		in.Capabilities = caps
	}
	key := render.CacheKey(tree, in)
	objs, err := c.renderer.Render(ctx, key, in)
	if err != nil {
		return bundleResult{}, fmt.Errorf("render %s at %s: %w", src.Path, short(commit), err)
	}
	objs, children := splitChildren(objs)
	if err := checkScope(objs, a.Spec.Destination.Namespace, policy.GetScope()); err != nil {
		return bundleResult{}, fmt.Errorf("render %s at %s: %w", src.Path, short(commit), err)
	}
	bkey := key + "\x00" + a.Name + "\x00" + a.Spec.Destination.Namespace + "\x00" + policyKey(policy, a)
	c.mu.Lock()
	b, ok := c.bundles[bkey]
	c.mu.Unlock()
	if !ok {
		cp := append([]*unstructured.Unstructured(nil), objs...) // NewBundle sorts; cached slices are shared
		b, err = manifest.NewBundle(a.Name, a.Spec.Destination.Namespace, commit, src.Path, cp, policy, ignoreDifferences(a))
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

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
