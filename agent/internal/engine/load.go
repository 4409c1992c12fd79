package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/meta"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/diff"
	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	"github.com/flotilla-cd/flotilla/agent/internal/policy"
)

// load decodes and plans b. On failure the app keeps no loaded bundle and
// retries with its backoff.
func (a *app) load(ctx context.Context, b *apiv1alpha1.Bundle) {
	objs, waves, hooks, err := a.plan(b)
	if err != nil {
		a.bundle, a.loadErr, a.lastErr, a.failedAt = nil, err, err.Error(), b.GetDigest()
		a.retry = newRetry(b.GetSyncPolicy().GetRetry())
		d := a.retry.NextBackOff()
		a.retryAt = a.e.clock.Now().Add(d)
		a.log.Error("cannot load bundle", "digest", b.GetDigest(), "error", err, "retry_in", d)
		return
	}
	old := a.objs
	a.objs = map[manifest.Key]*objState{}
	a.order = a.order[:0]
	for _, st := range objs {
		if prev, ok := old[st.key]; ok && prev.hash == st.hash {
			prev.wave = st.wave
			st = prev
		}
		a.objs[st.key] = st
		a.order = append(a.order, st.key)
	}
	slices.SortFunc(a.order, func(x, y manifest.Key) int {
		switch {
		case x.Less(y):
			return -1
		case y.Less(x):
			return 1
		}
		return 0
	})
	a.restoreFingerprints()
	a.waves = waves
	a.hooks = hooks
	a.managed.Store(int64(len(a.order)))
	a.bundle, a.loadErr, a.lastErr = b, nil, ""
	a.policy = b.GetSyncPolicy()
	a.syncOpts = apply.ParseSyncOptions(a.policy.GetSyncOptions())
	a.rules = diff.RulesFrom(b.GetIgnoreDifferences())
	a.retry = newRetry(a.policy.GetRetry())
	a.retryAt = time.Time{}
	a.needSync = a.policy.GetAutomated()
	a.retryBy, a.retryPrune = "automated", a.policy.GetPrune()

	snap := make([]*objState, 0, len(a.order))
	for _, k := range a.order {
		st := a.objs[k]
		snap = append(snap, &objState{key: k, desired: st.desired})
	}
	a.mu.Lock()
	a.snapshot, a.snapRules = snap, a.rules
	a.mu.Unlock()

	// Watch what we can map now; custom resources of CRDs in this bundle are
	// watched once their CRD is established.
	for _, k := range a.order {
		st := a.objs[k]
		if err := a.mapObject(ctx, st); err != nil {
			continue
		}
	}
	// Hooks' kinds too, so that a sync does not wait for a new watch.
	for _, s := range a.hooks {
		_ = a.mapHook(ctx, s) // an error shows when the hook runs
	}
	a.log.Info("loaded bundle", "digest", b.GetDigest(), "revision", b.GetRevision(), "objects", len(a.order), "waves", len(waves), "automated", a.needSync)
	if !a.policy.GetAutomated() && a.persistedLoaded() {
		a.check(ctx, a.order, true) // report sync status without applying
	}
}

// restoreFingerprints takes the persisted fingerprints of objects whose
// desired state is unchanged, so that after a restart live objects that still
// match need no dry-run. It reads the inventory without storeMu, which
// Accept may hold while it persists the bundle being loaded, under a.mu
// (see setInventory).
func (a *app) restoreFingerprints() {
	a.mu.Lock()
	inv := a.inventory
	a.mu.Unlock()
	for _, e := range inv {
		if st, ok := a.objs[e.Key()]; ok && st.liveFP == "" && e.FP != "" && e.Hash == st.hash {
			st.liveFP = e.FP
		}
	}
}

// plannedEntries returns the inventory entries of the objects b keeps in
// sync (hooks left out), as a sync of b records them before it writes; nil
// when b does not plan (its load reports why).
func (a *app) plannedEntries(b *apiv1alpha1.Bundle) []inventory.Entry {
	all, err := manifest.DecodeObjects(b)
	if err != nil {
		return nil
	}
	skipMissing := apply.ParseSyncOptions(b.GetSyncPolicy().GetSyncOptions()).SkipDryRunOnMissingResource
	scope := apply.MissingAsNamespaced(all, apply.BundleScope(all, a.e.applier.Mapper().Namespaced), skipMissing)
	objs, _ := splitHooks(all)
	waves, err := apply.Plan(objs, b.GetNamespace(), scope)
	if err != nil {
		return nil
	}
	var out []inventory.Entry
	for _, w := range waves {
		for _, step := range w.Steps {
			for _, o := range step.Objects {
				out = append(out, entryOf(manifest.KeyOf(o), o.GroupVersionKind()))
			}
		}
	}
	return out
}

// plan decodes, plans and prepares the objects of b: the objects kept in
// sync, in waves, and the hooks.
func (a *app) plan(b *apiv1alpha1.Bundle) ([]*objState, []apply.Wave, []*hookSpec, error) {
	all, err := manifest.DecodeObjects(b)
	if err != nil {
		return nil, nil, nil, err
	}
	skipMissing := apply.ParseSyncOptions(b.GetSyncPolicy().GetSyncOptions()).SkipDryRunOnMissingResource
	scope := apply.MissingAsNamespaced(all, apply.BundleScope(all, a.e.applier.Mapper().Namespaced), skipMissing)
	objs, hookObjs := splitHooks(all)
	waves, err := apply.Plan(objs, b.GetNamespace(), scope)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bundle %s: %w", a.name, err)
	}
	hookWaves, err := apply.Plan(hookObjs, b.GetNamespace(), scope)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bundle %s: %w", a.name, err)
	}
	if err := checkScope(append(slices.Clone(waves), hookWaves...), b); err != nil {
		return nil, nil, nil, fmt.Errorf("bundle %s: %w", a.name, err)
	}
	if err := checkPolicy(append(slices.Clone(waves), hookWaves...), a.e.opts.Policy); err != nil {
		return nil, nil, nil, fmt.Errorf("bundle %s: nothing applied: %w", a.name, err)
	}
	hooks, err := hookSpecs(a.name, b.GetDigest(), hookWaves)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bundle %s: %w", a.name, err)
	}
	seen := map[manifest.Key]bool{}
	rules := rulesKey(b.GetIgnoreDifferences())
	var out []*objState
	for _, w := range waves {
		for _, step := range w.Steps {
			for i, o := range step.Objects {
				p := apply.Prepare(a.name, o)
				step.Objects[i] = p
				k := manifest.KeyOf(p)
				if seen[k] {
					return nil, nil, nil, fmt.Errorf("bundle %s: object %s appears twice", a.name, k)
				}
				seen[k] = true
				out = append(out, &objState{key: k, desired: p, hash: diff.Hash(p) + rules, wave: w.Wave, objMemory: objMemory{sync: apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN}})
			}
		}
	}
	return out, waves, hooks, nil
}

// rulesKey is added to each object's hash when the bundle has ignore
// rules: a live state found equal under some rules says nothing under
// others, so a fingerprint must not carry over (nor be restored) when they
// change. Empty without rules, so that hashes stored before stay valid.
func rulesKey(rules []*apiv1alpha1.IgnoreDifference) string {
	if len(rules) == 0 {
		return ""
	}
	h := sha256.New()
	for _, r := range rules {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		h.Write(b)
		h.Write([]byte{0})
	}
	return "+" + hex.EncodeToString(h.Sum(nil)[:8])
}

// mapObject resolves the object's resource, checks that the agent may
// manage it (Options.Namespaces) and starts watching it.
func (a *app) mapObject(ctx context.Context, st *objState) error {
	if !st.mapped {
		mp, err := a.e.applier.Mapper().Mapping(st.desired.GroupVersionKind())
		if err != nil {
			return fmt.Errorf("%s: %w", st.key, err)
		}
		namespaced := mp.Scope.Name() == meta.RESTScopeNameNamespace
		if !namespaced && st.key.Namespace != "" {
			// Planned as namespaced before its kind was served
			// (SkipDryRunOnMissingResource): it is cluster-scoped.
			k := st.key
			k.Namespace = ""
			if err := manifest.CheckScope(k, false, a.bundle.GetNamespace(), a.bundle.GetSyncPolicy().GetScope()); err != nil {
				return err
			}
		}
		st.gvr, st.namespaced, st.mapped = mp.Resource, namespaced, true
	}
	if err := a.e.permitted(st.key, st.namespaced); err != nil {
		return err
	}
	if err := a.e.opts.Policy.Check(st.key, st.namespaced); err != nil {
		return err
	}
	if err := a.e.cache.Ensure(ctx, st.gvr, st.namespaced); err != nil {
		return fmt.Errorf("%s: %w", st.key, err)
	}
	return nil
}

// ErrNotPermitted is wrapped when an agent limited to namespaces
// (Options.Namespaces) is asked to manage a cluster-scoped object or one in
// another namespace.
var ErrNotPermitted = errors.New("forbidden for this agent")

// permitted checks an object against Options.Namespaces.
func (e *Engine) permitted(k manifest.Key, namespaced bool) error {
	nss := e.opts.Namespaces
	switch {
	case nss == nil:
		return nil
	case !namespaced:
		return fmt.Errorf("%s: %w: it is cluster-scoped, and the agent manages only objects in its namespaces (%s)", k, ErrNotPermitted, strings.Join(nss, ", "))
	case !slices.Contains(nss, k.Namespace):
		return fmt.Errorf("%s: %w: namespace %s is not one of its namespaces (%s)", k, ErrNotPermitted, k.Namespace, strings.Join(nss, ", "))
	}
	return nil
}

// checkScope refuses a bundle with objects outside its app's scope (the
// sync policy's), now that the plan knows every object's real scope: the
// hub cannot know the scope of custom kinds it has not seen defined.
func checkScope(waves []apply.Wave, b *apiv1alpha1.Bundle) error {
	s := b.GetSyncPolicy().GetScope()
	if s == nil {
		return nil
	}
	var refused manifest.ScopeErrors
	for _, w := range waves {
		for _, step := range w.Steps {
			for _, o := range step.Objects {
				refused.Add(manifest.CheckScope(manifest.KeyOf(o), step.Phase == apply.PhaseNamespaced, b.GetNamespace(), s))
			}
		}
	}
	return refused.Err()
}

// checkPolicy refuses a bundle with an object the cluster's own policy
// refuses (package policy), whatever the hub sent: the plan knows every
// object's real scope.
func checkPolicy(waves []apply.Wave, set *policy.Set) error {
	if set == nil {
		return nil
	}
	var refused []error
	n := 0
	for _, w := range waves {
		for _, step := range w.Steps {
			for _, o := range step.Objects {
				k := manifest.KeyOf(o)
				namespaced := step.Phase == apply.PhaseNamespaced
				if !namespaced {
					k.Namespace = ""
				}
				if err := set.Check(k, namespaced); err != nil {
					n++
					if len(refused) < 10 {
						refused = append(refused, err)
					}
				}
			}
		}
	}
	if n > len(refused) {
		refused = append(refused, fmt.Errorf("and %d more objects %w", n-len(refused), policy.ErrRefused))
	}
	return errors.Join(refused...)
}
