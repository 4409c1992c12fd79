package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/health"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// waitCRDs waits until the CRDs of step are Established and their kinds are
// served.
func (a *app) waitCRDs(ctx context.Context, step apply.Step) error {
	keys := make([]manifest.Key, 0, len(step.Objects))
	defined := map[schema.GroupKind]bool{}
	for _, o := range step.Objects {
		keys = append(keys, manifest.KeyOf(o))
		g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		defined[schema.GroupKind{Group: g, Kind: k}] = true
	}
	if err := a.waitHealthy(ctx, keys, "CRDs established"); err != nil {
		return err
	}
	var gvks []schema.GroupVersionKind
	for _, st := range a.objs {
		if gvk := st.desired.GroupVersionKind(); defined[gvk.GroupKind()] {
			gvks = append(gvks, gvk)
		}
	}
	if len(gvks) == 0 {
		return nil
	}
	return a.e.applier.Mapper().WaitFor(ctx, gvks, 30*time.Second)
}

// waitHealthy waits until every object of keys is Healthy in the watch
// cache (in the version our last write produced or newer). A Degraded
// object fails the wait.
func (a *app) waitHealthy(ctx context.Context, keys []manifest.Key, what string) error {
	for {
		changed := a.e.cache.Changed()
		var waiting []string
		for _, k := range keys {
			st := a.objs[k]
			live, ok := a.e.cache.Get(st.gvr, k.Namespace, k.Name)
			if !ok || !fresh(live.GetResourceVersion(), st.appliedRV) {
				waiting = append(waiting, k.String())
				continue
			}
			switch h := health.Of(live); h.Status {
			case apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY:
			case apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED:
				return fmt.Errorf("%s: %s is Degraded: %s", what, k, h.Message)
			default:
				waiting = append(waiting, k.String())
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		a.checkApplied(ctx)
		a.publish()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %d objects to be healthy (first %s): %w", what, len(waiting), waiting[0], ctx.Err())
		case <-changed:
		}
	}
}

// checkApplied handles watch events, during a wait, for the objects this
// sync has already written, so that self-heal and drift reports do not stall
// behind a long wave.
func (a *app) checkApplied(ctx context.Context) {
	a.mu.Lock()
	var keys []manifest.Key
	for k := range a.dirty {
		if a.changes.Has(k) {
			keys = append(keys, k)
			delete(a.dirty, k)
		}
	}
	a.mu.Unlock()
	if len(keys) > 0 {
		a.check(ctx, keys, false)
	}
}

// fresh reports whether a live resourceVersion is at least applied.
// resourceVersions are compared as numbers when both are (etcd-backed
// servers), else for equality.
func fresh(live, applied string) bool {
	if applied == "" || live == applied {
		return true
	}
	l, err1 := strconv.ParseUint(live, 10, 64)
	p, err2 := strconv.ParseUint(applied, 10, 64)
	return err1 == nil && err2 == nil && l >= p
}

// older reports whether a live resourceVersion is known to be older than
// applied: both are numbers (etcd-backed servers) and live is the smaller.
func older(live, applied string) bool {
	l, err1 := strconv.ParseUint(live, 10, 64)
	p, err2 := strconv.ParseUint(applied, 10, 64)
	return err1 == nil && err2 == nil && l < p
}
