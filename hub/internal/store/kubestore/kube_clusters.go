package kubestore

import (
	"context"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func clusterLabels(name string) map[string]string { return labels("cluster", labelCluster, name) }

// CreateCluster implements Store.
func (k *Store) CreateCluster(ctx context.Context, c store.Cluster) error {
	if err := store.CheckName("cluster", c.Name); err != nil {
		return err
	}
	if err := k.check(ctx); err != nil {
		return fmt.Errorf("create cluster %s: %w", c.Name, err)
	}
	o, err := newObject(resCluster, objectName("", c.Name), clusterLabels(c.Name), c)
	if err == nil {
		o, err = k.res(resCluster).Create(ctx, o, metav1.CreateOptions{})
		k.noteWrite(resCluster, o, err)
	}
	if err != nil {
		return fmt.Errorf("create cluster %s: %w", c.Name, apiErr(err))
	}
	return nil
}

// PutCluster implements Store.
func (k *Store) PutCluster(ctx context.Context, c store.Cluster) error {
	if err := store.CheckName("cluster", c.Name); err != nil {
		return err
	}
	if err := k.check(ctx); err != nil {
		return fmt.Errorf("put cluster %s: %w", c.Name, err)
	}
	if err := k.upsert(ctx, resCluster, objectName("", c.Name), clusterLabels(c.Name), c); err != nil {
		return fmt.Errorf("put cluster %s: %w", c.Name, err)
	}
	return nil
}

// GetCluster implements Store.
func (k *Store) GetCluster(ctx context.Context, name string) (store.Cluster, error) {
	var c store.Cluster
	err := k.check(ctx)
	if err == nil {
		_, err = k.get(ctx, resCluster, objectName("", name), &c)
	}
	if err != nil {
		return store.Cluster{}, fmt.Errorf("get cluster %s: %w", name, err)
	}
	return c, nil
}

// CachedCluster is GetCluster from the store's watch cache: it holds this
// store's own writes but may trail other hubs' by a watch event. A cluster
// the cache does not hold (or cannot tell of) is read from the API server.
// For reads done on every agent connection whose callers act again when
// the watch brings a change (see agentapi's Revalidate).
func (k *Store) CachedCluster(ctx context.Context, name string) (store.Cluster, error) {
	if err := k.check(ctx); err != nil {
		return store.Cluster{}, fmt.Errorf("get cluster %s: %w", name, err)
	}
	if o, found, ok := k.cachedObject(ctx, k.cache().clusters, objectName("", name)); ok && found {
		if c, err := ClusterOf(o); err == nil && c.Name == name {
			return c, nil
		}
	}
	return k.GetCluster(ctx, name)
}

// ListClusters implements Store. It reads the store's watch cache (every
// reconcile lists the clusters), which holds this store's own writes; see
// kube_cache.go.
func (k *Store) ListClusters(ctx context.Context, p store.Page) ([]store.Cluster, string, error) {
	if err := k.check(ctx); err != nil {
		return nil, "", fmt.Errorf("list clusters: %w", err)
	}
	items, ok := k.cachedClusters(ctx)
	if !ok {
		mark := k.watch.clusters.listing()
		listed, err := k.list(ctx, resCluster, "")
		if err != nil {
			return nil, "", fmt.Errorf("list clusters: %w", err)
		}
		k.watch.clusters.listed(mark)
		items = make([]*unstructured.Unstructured, len(listed))
		for i := range listed {
			items[i] = &listed[i]
		}
	}
	all := make([]store.Cluster, 0, len(items))
	for _, o := range items {
		var c store.Cluster
		if err := getSpec(o, &c); err != nil {
			return nil, "", fmt.Errorf("list clusters: %w", err)
		}
		all = append(all, c)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	out, next, err := pageByKey(all, p, func(c store.Cluster) string { return c.Name })
	if err != nil {
		return nil, "", fmt.Errorf("list clusters: %w", err)
	}
	return out, next, nil
}

// DeleteCluster implements Store: the cluster, then its join token,
// capabilities and status pages.
func (k *Store) DeleteCluster(ctx context.Context, name string) error {
	err := k.check(ctx)
	if err == nil {
		err = k.del(ctx, resCluster, objectName("", name))
	}
	if err == nil {
		err = k.deleteClusterRecords(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	return nil
}

// deleteClusterRecords removes what belongs to a deleted cluster.
func (k *Store) deleteClusterRecords(ctx context.Context, name string) error {
	if err := k.core.CoreV1().Secrets(k.ns).Delete(ctx, objectName(joinSecretPrefix, name), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := k.del(ctx, resCaps, objectName("", name)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	pages, err := k.list(ctx, resStatus, labelCluster+"="+labelValue(name))
	if err != nil {
		return err
	}
	for _, p := range pages {
		var sp statusPage
		if err := getSpec(&p, &sp); err != nil || sp.Cluster != name {
			continue
		}
		err := k.res(resStatus).Delete(ctx, p.GetName(), metav1.DeleteOptions{})
		k.noteDelete(resStatus, p.GetName())
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// UpdateCluster implements Store. fn may run more than once: when another
// writer changed the cluster meanwhile, it runs again on the new version.
func (k *Store) UpdateCluster(ctx context.Context, name string, fn func(*store.Cluster) error) error {
	err := k.check(ctx)
	if err == nil {
		err = k.updateCluster(ctx, name, fn)
	}
	if err != nil {
		return fmt.Errorf("update cluster %s: %w", name, err)
	}
	return nil
}

func (k *Store) updateCluster(ctx context.Context, name string, fn func(*store.Cluster) error) error {
	return k.modifyCluster(ctx, name, func(c *store.Cluster) (bool, error) {
		if err := fn(c); err != nil {
			return false, err
		}
		return true, nil
	})
}

// modifyCluster reads the cluster, lets fn change it (false: nothing to
// write) and writes it at the resourceVersion read. The first read is the
// watch cache's (this store's own writes included): an update costs one
// request instead of GET + UPDATE. A change fn makes to the cached copy is
// written at the cached resourceVersion, so it stands only if the object
// is still the one fn saw (else a conflict: fn runs again on a fresh read,
// never an overwrite); an error of fn on the cached copy is decided again on
// a fresh read too. Only "nothing to write" is taken from the cache as it
// is: use it for writes that may be skipped on a stale copy (TouchCluster);
// updateCluster always writes what fn returns without error.
func (k *Store) modifyCluster(ctx context.Context, name string, fn func(*store.Cluster) (bool, error)) error {
	oname := objectName("", name)
	if o, found, ok := k.cachedObject(ctx, k.cache().clusters, oname); ok && found {
		var c store.Cluster
		if err := getSpec(o, &c); err == nil {
			switch write, err := fn(&c); {
			case err == nil && !write:
				return nil
			case err == nil:
				err = k.writeCluster(ctx, name, o, c)
				if !apierrors.IsConflict(err) {
					return err
				}
			}
		}
	}
	return onConflict(ctx, func() error {
		var c store.Cluster
		o, err := k.get(ctx, resCluster, oname, &c)
		if err != nil {
			return err
		}
		write, err := fn(&c)
		if err != nil || !write {
			return err
		}
		return k.writeCluster(ctx, name, o, c)
	})
}

// writeCluster updates o, read at its resourceVersion, to c. An object
// gone meanwhile is a conflict (read again: it is not found then).
func (k *Store) writeCluster(ctx context.Context, name string, o *unstructured.Unstructured, c store.Cluster) error {
	if c.Name != name {
		return fmt.Errorf("rename to %q: %w", c.Name, store.ErrConflict)
	}
	if err := setSpec(o, c); err != nil {
		return err
	}
	u, err := k.res(resCluster).Update(ctx, o, metav1.UpdateOptions{})
	k.noteWrite(resCluster, u, err)
	if apierrors.IsNotFound(err) {
		return apierrors.NewConflict(resCluster.gvr().GroupResource(), o.GetName(), err)
	}
	return err
}

// TouchCluster implements Store; it writes only when the agent's version
// changed or LastSeen moved by a minute or more, so agents that reconnect
// often cost few writes.
func (k *Store) TouchCluster(ctx context.Context, name string, seen time.Time, agentVersion string) error {
	err := k.check(ctx)
	if err == nil {
		// Most connections need no write: the watch cache tells without a
		// request (a stale cache only costs a fresh read, see modifyCluster).
		err = k.modifyCluster(ctx, name, func(c *store.Cluster) (bool, error) {
			if c.AgentVersion == agentVersion && !seen.Before(c.LastSeen) && seen.Sub(c.LastSeen) < time.Minute {
				return false, nil
			}
			c.LastSeen, c.AgentVersion = seen, agentVersion
			return true, nil
		})
	}
	if err != nil {
		return fmt.Errorf("touch cluster %s: %w", name, apiErr(err))
	}
	return nil
}

// PutCapabilities implements Store.
func (k *Store) PutCapabilities(ctx context.Context, c store.ClusterCapabilities) error {
	if err := store.CheckName("cluster", c.Cluster); err != nil {
		return err
	}
	err := k.check(ctx)
	if err == nil {
		err = k.replace(ctx, resCaps, objectName("", c.Cluster), labels("capabilities", labelCluster, c.Cluster), c)
	}
	if err != nil {
		return fmt.Errorf("capabilities of cluster %s: %w", c.Cluster, err)
	}
	return nil
}

// ListCapabilities implements Store.
func (k *Store) ListCapabilities(ctx context.Context) ([]store.ClusterCapabilities, error) {
	var out []store.ClusterCapabilities
	err := k.listSpecs(ctx, resCaps, "", func(o *unstructured.Unstructured) error {
		var c store.ClusterCapabilities
		if err := getSpec(o, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list capabilities: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out, nil
}

func pinName(app, cluster string) string { return hashName(app + "\x00" + cluster) }

// PutPin implements Store.
func (k *Store) PutPin(ctx context.Context, p store.Pin) error {
	if err := store.CheckName("app", p.App); err != nil {
		return err
	}
	if p.Revision == "" {
		return fmt.Errorf("pin of %s: empty revision: %w", p.App, store.ErrInvalid)
	}
	err := k.check(ctx)
	if err == nil {
		err = k.upsert(ctx, resPin, pinName(p.App, p.Cluster), labels("pin", labelApp, p.App), p)
	}
	if err != nil {
		return fmt.Errorf("pin of %s on %q: %w", p.App, p.Cluster, err)
	}
	return nil
}

// DeletePins implements Store.
func (k *Store) DeletePins(ctx context.Context, app, cluster string) error {
	if err := k.check(ctx); err != nil {
		return fmt.Errorf("unpin %s: %w", app, err)
	}
	if cluster != "" {
		if err := k.del(ctx, resPin, pinName(app, cluster)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unpin %s on %s: %w", app, cluster, err)
		}
		return nil
	}
	err := k.listSpecs(ctx, resPin, labelApp+"="+labelValue(app), func(o *unstructured.Unstructured) error {
		var p store.Pin
		if err := getSpec(o, &p); err != nil || p.App != app {
			return err
		}
		if err := k.res(resPin).Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unpin %s: %w", app, err)
	}
	return nil
}

// ListPins implements Store.
func (k *Store) ListPins(ctx context.Context) ([]store.Pin, error) {
	var out []store.Pin
	err := k.listSpecs(ctx, resPin, "", func(o *unstructured.Unstructured) error {
		var p store.Pin
		if err := getSpec(o, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Cluster < out[j].Cluster
	})
	return out, nil
}

// listSpecs calls fn for every object of r matching selector.
func (k *Store) listSpecs(ctx context.Context, r resource, selector string, fn func(*unstructured.Unstructured) error) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	items, err := k.list(ctx, r, selector)
	if err != nil {
		return err
	}
	for i := range items {
		if err := fn(&items[i]); err != nil {
			return err
		}
	}
	return nil
}

// pageByKey returns the page of sorted items after p's cursor (the base64
// of the last key of the previous page, as Bolt's forward lists).
func pageByKey[T any](sorted []T, p store.Page, key func(T) string) ([]T, string, error) {
	after, err := store.DecodeCursor(p.After)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != nil {
		start = sort.Search(len(sorted), func(i int) bool { return key(sorted[i]) > string(after) })
	}
	end := min(start+p.EffectiveLimit(), len(sorted))
	out := sorted[start:end]
	if len(out) == 0 {
		return nil, "", nil
	}
	if end < len(sorted) {
		return out, store.EncodeCursor([]byte(key(out[len(out)-1]))), nil
	}
	return out, "", nil
}
