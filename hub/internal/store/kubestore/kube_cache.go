package kubestore

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// The Kubernetes store keeps a watch cache (informers) of its Cluster and
// ClusterStatus objects. The reads that run on every reconcile and every
// status write (the cluster list, a cluster's status pages) come from it
// instead of the API server: with many agents and several replicas those
// lists were what overloaded the API server.
//
// Reads from the cache see the caller's own writes: every write of the
// store records the resourceVersion the API server gave it, and a cached
// read first waits (briefly) until the cache has processed an event at
// least that recent, and until the objects it deleted are gone from it
// (a delete's resourceVersion is not told to the client). A cache that is
// not synced yet, or
// that does not catch up in cacheCatchUp, is passed by: the read goes to
// the API server. Writes from the cache start from the cached
// resourceVersion: a stale one is a conflict, retried from a fresh read,
// never an overwrite. Other replicas' writes reach the cache through the
// watch (milliseconds); reads that must see them at once go to the API
// server (GetCluster and the other single-object reads do).

// cacheCatchUp bounds how long a cached read waits for the cache to reach
// the caller's own write before asking the API server instead.
const cacheCatchUp = 2 * time.Second

// watched is one informer of the store's cache and how far it has got.
type watched struct {
	inf cache.SharedIndexInformer
	// seen is the highest resourceVersion the informer's handlers have
	// processed: the indexer holds everything up to it.
	seen atomic.Uint64
	// want is the resourceVersion a read must wait for (the store's own
	// newest create or update).
	want atomic.Uint64

	mu sync.Mutex
	// wantObj is the resourceVersion of the store's newest write of each
	// object (by key) that the cache had not shown yet: a read of one
	// object waits for its own write only, not for every write since.
	wantObj map[string]uint64
	// moved is closed and replaced each time seen grows.
	moved chan struct{}
	// gone holds the names this store deleted (a delete's resourceVersion
	// is not told to the client) that the cache may still show, with the
	// count of deletes at the time; a read waits until they are gone.
	gone    map[string]uint64
	deletes uint64
}

type kubeCache struct {
	once     sync.Once
	factory  dynamicinformer.DynamicSharedInformerFactory
	clusters *watched
	statuses *watched
}

func (k *Store) newCache() *kubeCache {
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(k.dyn, 0, k.ns, nil)
	c := &kubeCache{factory: f}
	c.clusters = newWatched(f.ForResource(resCluster.gvr()).Informer())
	c.statuses = newWatched(f.ForResource(resStatus.gvr()).Informer())
	return c
}

func newWatched(inf cache.SharedIndexInformer) *watched {
	w := &watched{inf: inf, moved: make(chan struct{}), gone: map[string]uint64{}, wantObj: map[string]uint64{}}
	see := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if o, ok := obj.(*unstructured.Unstructured); ok {
			w.saw(o.GetResourceVersion())
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: see, UpdateFunc: func(_, n any) { see(n) }, DeleteFunc: see,
	})
	return w
}

func parseRV(rv string) (uint64, bool) {
	n, err := strconv.ParseUint(rv, 10, 64)
	return n, err == nil
}

func (w *watched) saw(rv string) {
	n, ok := parseRV(rv)
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok && n > w.seen.Load() {
		w.seen.Store(n)
	}
	// A delete's event may carry an older resourceVersion (a final state
	// the watch missed): wake the readers whatever it is.
	close(w.moved)
	w.moved = make(chan struct{})
}

// wrote records a create or update of the object with key (namespace/
// name) answered with resourceVersion rv.
func (w *watched) wrote(key, rv string) {
	n, ok := parseRV(rv)
	if !ok {
		return
	}
	w.mu.Lock()
	w.wantObj[key] = max(w.wantObj[key], n)
	w.mu.Unlock()
	for {
		cur := w.want.Load()
		if n <= cur || w.want.CompareAndSwap(cur, n) {
			return
		}
	}
}

// deleted records a delete of the object named name.
func (w *watched) deleted(name string) {
	w.mu.Lock()
	w.deletes++
	w.gone[name] = w.deletes
	w.mu.Unlock()
}

// listing returns the mark to hand listed after a list from the API server.
func (w *watched) listing() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deletes
}

// listed records a list from the API server begun when listing returned
// mark: the deletes before it need no more waiting for (the list showed
// them; should the cache lag that far, its next reads show what the API
// server showed a moment before).
func (w *watched) listed(mark uint64) {
	w.mu.Lock()
	for name, n := range w.gone {
		if n <= mark {
			delete(w.gone, name)
		}
	}
	w.mu.Unlock()
}

// ready waits until the cache holds the store's own writes (key "": all
// of them; else the object's, and its delete); false means read from the
// API server.
func (w *watched) ready(ctx context.Context, key string) bool {
	if !w.inf.HasSynced() {
		return false
	}
	timer := time.NewTimer(cacheCatchUp)
	defer timer.Stop()
	for {
		w.mu.Lock()
		seen, moved := w.seen.Load(), w.moved
		want := w.want.Load()
		pending := 0
		if key != "" {
			want = w.wantObj[key]
			if want <= seen {
				delete(w.wantObj, key)
			}
			if _, gone := w.gone[key]; gone {
				if _, there, _ := w.inf.GetIndexer().GetByKey(key); there {
					pending++
				} else {
					delete(w.gone, key)
				}
			}
		} else {
			for name := range w.gone {
				if _, there, _ := w.inf.GetIndexer().GetByKey(name); !there {
					delete(w.gone, name)
				}
			}
			pending = len(w.gone)
			if want <= seen {
				clear(w.wantObj)
			}
		}
		w.mu.Unlock()
		if seen >= want && pending == 0 {
			return true
		}
		select {
		case <-moved:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// cache returns the store's watch cache, started on first use (it stops
// when the store closes).
func (k *Store) cache() *kubeCache {
	k.watch.once.Do(func() { k.watch.factory.Start(k.closing) })
	return k.watch
}

// Informer returns the store's shared informer on gvr (ClustersResource or
// StatusResource; others get an informer of their own that the caller
// starts), for replicas that follow the store's changes: one watch per
// resource serves both. Handlers added to it run until removed.
func (k *Store) Informer(gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	inf := k.watch.factory.ForResource(gvr).Informer()
	k.cache()
	return inf
}

// cachedClusters returns every Cluster object from the cache, or false
// when the API server must be asked.
func (k *Store) cachedClusters(ctx context.Context) ([]*unstructured.Unstructured, bool) {
	w := k.cache().clusters
	if !w.ready(ctx, "") {
		return nil, false
	}
	objs := w.inf.GetStore().List()
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out, true
}

// cachedObject returns the cached object of r named name: found, and
// whether the cache could answer.
func (k *Store) cachedObject(ctx context.Context, w *watched, name string) (*unstructured.Unstructured, bool, bool) {
	key := k.ns + "/" + name
	if !w.ready(ctx, key) {
		return nil, false, false
	}
	obj, ok, err := w.inf.GetStore().GetByKey(key)
	if err != nil {
		return nil, false, false
	}
	if !ok {
		return nil, false, true
	}
	u, isU := obj.(*unstructured.Unstructured)
	if !isU {
		return nil, false, false
	}
	return u.DeepCopy(), true, true
}

// of returns the cache's informer of r, nil if it has none.
func (c *kubeCache) of(r resource) *watched {
	switch r {
	case resCluster:
		return c.clusters
	case resStatus:
		return c.statuses
	}
	return nil
}
