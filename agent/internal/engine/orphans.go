package engine

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Orphaned-resource monitoring (an app's sync policy carries its project's
// orphanedResources). An orphaned object is a namespaced object in the
// app's destination namespace that no app this agent holds manages, that
// no other object owns and that neither the defaults below nor the
// project's ignore list exclude. The agent looks after each sync operation
// and every OrphansEvery, never on a status tick: one discovery and, per
// namespace and listable kind, a paginated metadata-only list. Without an
// app that asks for it, it lists nothing.

// Defaults of the monitoring.
const (
	DefaultOrphansEvery = 3 * time.Minute
	// maxOrphansListed is how many orphaned objects a status names (the
	// count counts them all).
	maxOrphansListed = 100
	// orphansPage is the page size of the lists.
	orphansPage = 500
	// orphansAfterSync delays the look after a sync, so that a burst of
	// syncs costs one look.
	orphansAfterSync = 2 * time.Second
)

// orphanDefaults are the objects that are never orphaned: what Kubernetes
// makes in every namespace, and kinds that controllers write (as Argo CD's
// exceptions and default resource exclusions).
var orphanDefaults = []struct{ group, kind, name string }{
	{"", "ServiceAccount", "default"},
	{"", "ConfigMap", "kube-root-ca.crt"},
	{"", "Endpoints", "*"},
	{"discovery.k8s.io", "EndpointSlice", "*"},
	{"", "Event", "*"},
	{"events.k8s.io", "Event", "*"},
	{"coordination.k8s.io", "Lease", "*"},
	{"authorization.k8s.io", "LocalSubjectAccessReview", "*"},
	{"metrics.k8s.io", "PodMetrics", "*"},
}

// orphanCandidate is a namespaced object nothing manages or owns.
type orphanCandidate struct {
	ref  *apiv1alpha1.ObjectRef
	kind schema.GroupKind
}

// orphanScanner holds the clients of the monitoring and its wake-ups.
type orphanScanner struct {
	disco rest.Interface // reads aggregated discovery (apply.Discover)
	meta  metadata.Interface
	kick  chan struct{}
}

// kickOrphans asks for a look soon (after a sync).
func (e *Engine) kickOrphans() {
	select {
	case e.orphans.kick <- struct{}{}:
	default:
	}
}

// runOrphans looks for orphaned objects at start, orphansAfterSync after
// a kick and every OrphansEvery, until ctx ends.
func (e *Engine) runOrphans(ctx context.Context) {
	for {
		e.scanOrphans(ctx)
		every := e.clock.NewTimer(e.opts.OrphansEvery)
		select {
		case <-ctx.Done():
			every.Stop()
			return
		case <-every.C():
		case <-e.orphans.kick:
			every.Stop()
			t := e.clock.NewTimer(orphansAfterSync)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
	}
}

// orphanWant is one app that asks for monitoring.
type orphanWant struct {
	a   *app
	ns  string
	set *apiv1alpha1.OrphanedResources
}

// scanOrphans looks once and updates the report of every app.
func (e *Engine) scanOrphans(ctx context.Context) {
	e.mu.Lock()
	apps := make([]*app, 0, len(e.apps))
	for _, a := range e.apps {
		apps = append(apps, a)
	}
	e.mu.Unlock()

	managed := map[manifest.Key]bool{}
	held := map[string]bool{}
	var wants []orphanWant
	for _, a := range apps {
		if _, removed := a.heldDigest(); removed {
			continue
		}
		held[a.name] = true
		a.storeMu.Lock()
		b := a.persisted
		for _, en := range a.inventory {
			managed[manifest.Key{Group: en.Group, Kind: en.Kind, Namespace: en.Namespace, Name: en.Name}] = true
		}
		a.storeMu.Unlock()
		if set := b.GetSyncPolicy().GetOrphanedResources(); set != nil && b.GetNamespace() != "" {
			wants = append(wants, orphanWant{a: a, ns: b.GetNamespace(), set: set})
		} else {
			a.setOrphaned(nil)
		}
	}
	if len(wants) == 0 {
		return
	}
	var namespaces []string
	for _, w := range wants {
		if !slices.Contains(namespaces, w.ns) {
			namespaces = append(namespaces, w.ns)
		}
	}
	byNS, errs := e.listOrphans(ctx, namespaces, managed, held)
	if ctx.Err() != nil {
		return
	}
	for _, w := range wants {
		r := &apiv1alpha1.OrphanedReport{Warn: w.set.GetWarn(), Error: errs[w.ns]}
		for _, c := range byNS[w.ns] {
			if !orphanCounts(w.set, c) {
				continue
			}
			r.Count++
			if len(r.Objects) < maxOrphansListed {
				r.Objects = append(r.Objects, c.ref)
			}
		}
		w.a.setOrphaned(r)
	}
}

// listOrphans lists every listable namespaced kind in each namespace and
// returns, per namespace, the objects nothing manages or owns (sorted by
// group, kind and name) and the errors of the lists that failed for
// another reason than a refusal or a kind that went away.
func (e *Engine) listOrphans(ctx context.Context, namespaces []string, managed map[manifest.Key]bool, held map[string]bool) (map[string][]orphanCandidate, map[string]string) {
	out := map[string][]orphanCandidate{}
	errs := map[string]string{}
	var usable []string
	for _, ns := range namespaces {
		switch {
		case len(e.opts.Namespaces) > 0 && !slices.Contains(e.opts.Namespaces, ns):
			errs[ns] = fmt.Sprintf("namespace %s is outside the namespaces this agent manages", ns)
		case !e.opts.Policy.NamespaceAllowed(ns):
			errs[ns] = fmt.Sprintf("namespace %s is outside the cluster policy's namespaces", ns)
		default:
			usable = append(usable, ns)
		}
	}
	if len(usable) == 0 {
		return out, errs
	}
	kinds, err := e.listableKinds(ctx)
	if err != nil {
		for _, ns := range usable {
			errs[ns] = err.Error()
		}
		if len(kinds) == 0 {
			return out, errs
		}
	}
	for _, ns := range usable {
		for _, k := range kinds {
			if ctx.Err() != nil {
				return out, errs
			}
			err := e.listKindOrphans(ctx, ns, k, managed, held, func(c orphanCandidate) { out[ns] = append(out[ns], c) })
			if err != nil && errs[ns] == "" {
				errs[ns] = err.Error()
			}
		}
	}
	return out, errs
}

// listedKind is a namespaced kind the agent may list.
type listedKind struct {
	gvr  schema.GroupVersionResource
	kind string
}

// listableKinds are the preferred versions of the namespaced kinds that
// serve list, sorted by group and kind, read from the API server's
// aggregated discovery (as the apply mapper reads it: client-go's discovery
// package would link the typed scheme of every API group into the agent).
// A group whose aggregated API server did not answer (stale) is left out
// and named in the error returned with what was found.
func (e *Engine) listableKinds(ctx context.Context) ([]listedKind, error) {
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	groups, err := apply.Discover(dctx, e.orphans.disco)
	if err != nil {
		return nil, fmt.Errorf("discover namespaced kinds: %w", err)
	}
	var out []listedKind
	var stale []string
	for _, g := range groups {
		if len(g.Versions) == 0 {
			continue
		}
		v := g.Versions[0] // the preferred version comes first
		if v.Freshness == apidiscoveryv2.DiscoveryFreshnessStale {
			stale = append(stale, g.Name+"/"+v.Version)
			continue
		}
		for _, r := range v.Resources {
			if r.Scope != apidiscoveryv2.ScopeNamespace || r.ResponseKind == nil || !slices.Contains(r.Verbs, "list") ||
				defaultExcluded(g.Name, r.ResponseKind.Kind, "") {
				continue
			}
			out = append(out, listedKind{gvr: schema.GroupVersionResource{Group: g.Name, Version: v.Version, Resource: r.Resource}, kind: r.ResponseKind.Kind})
		}
	}
	slices.SortFunc(out, func(a, b listedKind) int {
		return strings.Compare(a.gvr.Group+"/"+a.kind, b.gvr.Group+"/"+b.kind)
	})
	if len(stale) > 0 {
		return out, fmt.Errorf("discover namespaced kinds: the aggregated API servers of %s did not answer", strings.Join(stale, ", "))
	}
	return out, nil
}

// listKindOrphans pages through one kind in one namespace (metadata only)
// and calls found for each object nothing manages or owns. A refusal
// (RBAC) or a kind that cannot be listed is skipped without an error.
func (e *Engine) listKindOrphans(ctx context.Context, ns string, k listedKind, managed map[manifest.Key]bool, held map[string]bool, found func(orphanCandidate)) error {
	opts := metav1.ListOptions{Limit: orphansPage}
	for {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		list, err := e.orphans.meta.Resource(k.gvr).Namespace(ns).List(lctx, opts)
		cancel()
		switch {
		case err == nil:
		case apierrors.IsForbidden(err), apierrors.IsNotFound(err), apierrors.IsMethodNotSupported(err), apierrors.IsUnauthorized(err):
			return nil
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("list %s in namespace %s: %w", k.gvr.GroupResource(), ns, err)
		}
		for i := range list.Items {
			m := &list.Items[i]
			key := manifest.Key{Group: k.gvr.Group, Kind: k.kind, Namespace: ns, Name: m.Name}
			if !e.unmanaged(key, &m.ObjectMeta, managed, held) {
				continue
			}
			found(orphanCandidate{
				ref:  &apiv1alpha1.ObjectRef{Group: k.gvr.Group, Version: k.gvr.Version, Kind: k.kind, Namespace: ns, Name: m.Name},
				kind: schema.GroupKind{Group: k.gvr.Group, Kind: k.kind},
			})
		}
		if list.Continue == "" {
			return nil
		}
		opts.Continue = list.Continue
	}
}

// unmanaged reports whether an object is a candidate orphan: not owned by
// another object, not managed by an app the agent holds (inventory or
// tracking annotation), not one of the agent's hooks or records, not a
// default exception, and one the cluster policy would let an app manage.
func (e *Engine) unmanaged(k manifest.Key, m *metav1.ObjectMeta, managed map[manifest.Key]bool, held map[string]bool) bool {
	if len(m.OwnerReferences) > 0 || managed[k] {
		return false
	}
	if app, _, ok := manifest.ParseTrackingID(m.Annotations[manifest.TrackingAnnotation]); ok && held[app] {
		return false
	}
	if _, ok := m.Labels[hookLabel]; ok {
		return false
	}
	if _, ok := m.Labels["flotilla.dev/record"]; ok {
		return false
	}
	if k.Group == "" && k.Kind == "Secret" && m.Annotations["kubernetes.io/service-account.name"] == "default" {
		return false // the default ServiceAccount's token
	}
	if k.Group == "" && k.Kind == "Service" && k.Namespace == "default" && k.Name == "kubernetes" {
		return false
	}
	if defaultExcluded(k.Group, k.Kind, k.Name) {
		return false
	}
	return e.opts.Policy.Check(k, true) == nil
}

// defaultExcluded reports whether an object (name "": any object of the
// kind) is one of orphanDefaults' whole-kind exclusions or its named one.
func defaultExcluded(group, kind, name string) bool {
	for _, d := range orphanDefaults {
		if d.group == group && d.kind == kind && (d.name == "*" || (name != "" && d.name == name)) {
			return true
		}
	}
	return false
}

// orphanCounts applies an app's settings to a candidate: its kind must be
// in kinds (when set) and no ignore key may match it.
func orphanCounts(set *apiv1alpha1.OrphanedResources, c orphanCandidate) bool {
	if ks := set.GetKinds(); len(ks) > 0 {
		ok := false
		for _, k := range ks {
			ok = ok || keyMatches(k, c.kind.Group, c.kind.Kind, "")
		}
		if !ok {
			return false
		}
	}
	for _, k := range set.GetIgnore() {
		if keyMatches(k, c.kind.Group, c.kind.Kind, c.ref.GetName()) {
			return false
		}
	}
	return true
}

// keyMatches matches group, kind and name against k's globs ("" kind or
// name: any; "" group: the core group).
func keyMatches(k *apiv1alpha1.OrphanedKey, group, kind, name string) bool {
	glob := func(pattern, s string) bool {
		ok, err := path.Match(pattern, s)
		return err == nil && ok
	}
	return glob(k.GetGroup(), group) &&
		(k.GetKind() == "" || glob(k.GetKind(), kind)) &&
		(k.GetName() == "" || name == "" || glob(k.GetName(), name))
}

// setOrphaned stores an app's report and wakes its worker to publish it
// when it changed.
func (a *app) setOrphaned(r *apiv1alpha1.OrphanedReport) {
	a.mu.Lock()
	changed := !proto.Equal(a.orphaned, r)
	a.orphaned = r
	a.mu.Unlock()
	if changed {
		a.poke()
	}
}
