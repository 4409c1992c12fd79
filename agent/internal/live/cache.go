package live

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// ErrNotStarted is returned by Ensure before Start.
var ErrNotStarted = errors.New("live cache not started")

// ErrClusterScoped is returned by Ensure for a cluster-scoped resource when
// the cache watches only some namespaces.
var ErrClusterScoped = errors.New("cluster-scoped resources are not watched by a cache limited to namespaces")

// SyncTimeout bounds how long Ensure waits for a new informer's first list.
const SyncTimeout = 30 * time.Second

// Event is a change of one watched object. Obj is the new object, or the
// last known state when Deleted; Old is the previous state of an update
// (nil otherwise). Handlers must not modify either.
type Event struct {
	GVR     schema.GroupVersionResource
	Obj     *unstructured.Unstructured
	Old     *unstructured.Unstructured
	Deleted bool
}

// Cache is the set of informers. Its methods are safe for concurrent use.
type Cache struct {
	dyn        dynamic.Interface
	selector   string
	namespaces []string // nil: cluster-wide
	handler    func(Event)
	log        hclog.Logger

	mu        sync.Mutex
	ctx       context.Context
	wg        sync.WaitGroup
	informers map[schema.GroupVersionResource][]cache.SharedIndexInformer
	byNS      map[watchKey]cache.SharedIndexInformer
	changed   chan struct{}
}

// watchKey names one informer: a resource in one namespace, or in all
// ("") for a cluster-wide cache.
type watchKey struct {
	gvr schema.GroupVersionResource
	ns  string
}

// New returns a cache that watches objects matching labelSelector and calls
// handler for every add, update and delete (from informer goroutines; keep
// it short). With namespaces, each namespaced resource is watched in each of
// those namespaces only (one informer per namespace, so that RBAC on those
// namespaces suffices) and cluster-scoped resources are not watched; with
// none, every resource is watched cluster-wide.
func New(dyn dynamic.Interface, labelSelector string, namespaces []string, handler func(Event), log hclog.Logger) *Cache {
	if len(namespaces) == 0 {
		namespaces = nil
	}
	return &Cache{
		dyn: dyn, selector: labelSelector, namespaces: namespaces, handler: handler, log: log,
		informers: map[schema.GroupVersionResource][]cache.SharedIndexInformer{},
		byNS:      map[watchKey]cache.SharedIndexInformer{},
		changed:   make(chan struct{}),
	}
}

// Namespaces returns the namespaces the cache is limited to (nil: all).
func (c *Cache) Namespaces() []string { return c.namespaces }

// Start lets Ensure start informers; they run until ctx ends. Wait waits
// for them to stop.
func (c *Cache) Start(ctx context.Context) {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
}

// Wait blocks until every informer goroutine has returned (after the Start
// context ended).
func (c *Cache) Wait() { c.wg.Wait() }

// Ensure starts the informers for gvr unless they run already, and waits
// until their first list is in the cache (at most SyncTimeout). namespaced
// tells the resource's scope; a cache limited to namespaces refuses a
// cluster-scoped resource with ErrClusterScoped.
func (c *Cache) Ensure(ctx context.Context, gvr schema.GroupVersionResource, namespaced bool) error {
	c.mu.Lock()
	if c.ctx == nil {
		c.mu.Unlock()
		return ErrNotStarted
	}
	if c.namespaces != nil && !namespaced {
		c.mu.Unlock()
		return fmt.Errorf("watch %s: %w", gvr, ErrClusterScoped)
	}
	infs, ok := c.informers[gvr]
	if !ok {
		namespaces := []string{metav1.NamespaceAll}
		if c.namespaces != nil {
			namespaces = c.namespaces
		}
		for _, ns := range namespaces {
			inf, err := c.start(gvr, ns)
			if err != nil {
				c.mu.Unlock()
				return err
			}
			infs = append(infs, inf)
			c.byNS[watchKey{gvr, ns}] = inf
		}
		c.informers[gvr] = infs
		c.log.Debug("watching resource", "resource", gvr.String(), "namespaces", len(namespaces))
	}
	c.mu.Unlock()
	synced := func() bool {
		for _, inf := range infs {
			if !inf.HasSynced() {
				return false
			}
		}
		return true
	}
	if synced() {
		return nil
	}
	syncCtx, cancel := context.WithTimeout(ctx, SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced) {
		return fmt.Errorf("watch %s: first list did not complete: %w", gvr, context.Cause(syncCtx))
	}
	return nil
}

// start runs one informer for gvr in ns (all namespaces when empty); c.mu
// must be held.
func (c *Cache) start(gvr schema.GroupVersionResource, ns string) (cache.SharedIndexInformer, error) {
	inf := c.newInformer(gvr, ns)
	if err := inf.SetTransform(stripManagedFields); err != nil {
		return nil, fmt.Errorf("watch %s: %w", gvr, err)
	}
	if _, err := inf.AddEventHandler(c.handlerFor(gvr)); err != nil {
		return nil, fmt.Errorf("watch %s: %w", gvr, err)
	}
	runCtx := c.ctx
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		inf.RunWithContext(runCtx)
	}()
	return inf, nil
}

// newInformer builds an informer over the dynamic client for gvr in ns,
// limited to the cache's label selector. It is what dynamicinformer does,
// without that package: it links client-go's typed informers for every
// built-in API group, which would add megabytes to the agent's binary and
// its resident memory.
func (c *Cache) newInformer(gvr schema.GroupVersionResource, ns string) cache.SharedIndexInformer {
	res := c.dyn.Resource(gvr).Namespace(ns)
	selector := c.selector
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return res.Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(lw, c.dyn),
		&unstructured.Unstructured{},
		cache.SharedIndexInformerOptions{
			Indexers:          cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
			ObjectDescription: gvr.String(),
		},
	)
}

// stripManagedFields drops the field sets of metadata.managedFields before
// objects enter the cache: they are a large share of an object's memory and
// only ignore rules by field manager and field takeover need them (those
// read the object from the API server). Each entry's manager, operation
// and subresource stay, so that the engine knows without a request whether
// another manager holds fields of an object it applies.
func stripManagedFields(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		entries := u.GetManagedFields()
		if len(entries) == 0 {
			return obj, nil
		}
		kept := make([]any, 0, len(entries))
		for _, e := range entries {
			m := map[string]any{"manager": e.Manager, "operation": string(e.Operation)}
			if e.Subresource != "" {
				m["subresource"] = e.Subresource
			}
			kept = append(kept, m)
		}
		if md, ok := u.Object["metadata"].(map[string]any); ok {
			md["managedFields"] = kept
		}
	}
	return obj, nil
}

// Watched reports whether the informers for gvr run and have synced.
func (c *Cache) Watched(gvr schema.GroupVersionResource) bool {
	c.mu.Lock()
	infs, ok := c.informers[gvr]
	c.mu.Unlock()
	for _, inf := range infs {
		if !inf.HasSynced() {
			return false
		}
	}
	return ok
}

// Get returns the cached object; ok is false when it is not in the cache
// (or its resource or namespace is not watched). The object must not be
// modified, and has no managedFields.
func (c *Cache) Get(gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, bool) {
	k := watchKey{gvr: gvr}
	if c.namespaces != nil {
		k.ns = namespace
	}
	c.mu.Lock()
	inf, ok := c.byNS[k]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	item, exists, err := inf.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, false
	}
	u, ok := item.(*unstructured.Unstructured)
	return u, ok
}

// Changed returns a channel closed at the next event of any watched object.
func (c *Cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Cache) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Cache) handlerFor(gvr schema.GroupVersionResource) cache.ResourceEventHandler {
	emit := func(obj, old any, deleted bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		o, _ := old.(*unstructured.Unstructured)
		c.handler(Event{GVR: gvr, Obj: u, Old: o, Deleted: deleted})
		c.notify()
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { emit(obj, nil, false) },
		UpdateFunc: func(old, obj any) { emit(obj, old, false) },
		DeleteFunc: func(obj any) { emit(obj, nil, true) },
	}
}
