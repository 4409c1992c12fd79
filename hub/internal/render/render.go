package render

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ErrRender is wrapped by every error about the content being rendered (as
// opposed to a cancelled context).
var ErrRender = errors.New("render")

// Options configures a Renderer. Zero values take the defaults.
type Options struct {
	// MaxEntries bounds the cache (default 1024 renders); the least
	// recently used entry is dropped first.
	MaxEntries int
	// Parallelism bounds concurrent renders (default GOMAXPROCS).
	Parallelism int
	// Logger receives debug logs of renders (default: none).
	Logger hclog.Logger
	// Workers renders Helm charts and kustomizations in killable worker
	// processes with limits (see package renderproc); nil renders them
	// in-process, where a template that never ends is never stopped.
	Workers *renderproc.Pool
	// Engines render Helm charts, kustomizations and Jsonnet files
	// (package render/engines; the hub and its render workers set it).
	// Nil renders plain YAML and JSON only: other sources are errors
	// wrapping ErrNoEngine.
	Engines Engines
}

// Stats counts the work a Renderer did.
type Stats struct {
	Renders uint64 // renders run
	Hits    uint64 // calls answered from the cache or by a render in flight
	Entries int    // entries cached now
}

// Renderer renders sources and caches the results.
type Renderer struct {
	opts Options
	log  hclog.Logger
	sem  chan struct{}

	mu      sync.Mutex
	entries map[string]*list.Element // of *entry
	lru     *list.List               // front: most recently used

	renders, hits atomic.Uint64
}

type entry struct {
	key  string
	done chan struct{}
	objs []*unstructured.Unstructured
	err  error
}

// New returns a Renderer.
func New(opts Options) *Renderer {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 1024
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Renderer{
		opts:    opts,
		log:     opts.Logger.Named("render"),
		sem:     make(chan struct{}, opts.Parallelism),
		entries: map[string]*list.Element{},
		lru:     list.New(),
	}
}

// Stats returns counters of the work done so far.
func (r *Renderer) Stats() Stats {
	r.mu.Lock()
	n := r.lru.Len()
	r.mu.Unlock()
	return Stats{Renders: r.renders.Load(), Hits: r.hits.Load(), Entries: n}
}

// Render returns the objects in for key, rendering them at most once per
// key while the result stays cached; concurrent calls with one key share
// one render. Results, errors included, are cached: inputs with the same
// key render the same. The slice is the caller's; the objects are shared
// and must not be modified. Objects come sorted in canonical bundle order.
//
// Errors name the file, document or field at fault and wrap ErrRender,
// except a cancelled ctx, which returns ctx's error.
func (r *Renderer) Render(ctx context.Context, key string, in Input) ([]*unstructured.Unstructured, error) {
	for {
		e, leader := r.lookup(key)
		if leader {
			r.run(ctx, e, in)
		} else {
			r.hits.Add(1)
			select {
			case <-e.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if isContextErr(e.err) && ctx.Err() == nil {
			continue // the leader was cancelled, not us: render again
		}
		if e.err != nil {
			return nil, e.err
		}
		return append([]*unstructured.Unstructured(nil), e.objs...), nil
	}
}

// lookup returns the entry for key, creating it when missing; leader is
// true for the caller that must render it.
func (r *Renderer) lookup(key string) (*entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.entries[key]; ok {
		r.lru.MoveToFront(el)
		return el.Value.(*entry), false
	}
	e := &entry{key: key, done: make(chan struct{})}
	r.entries[key] = r.lru.PushFront(e)
	for r.lru.Len() > r.opts.MaxEntries {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.entries, old.Value.(*entry).key)
	}
	return e, true
}

func (r *Renderer) run(ctx context.Context, e *entry, in Input) {
	defer close(e.done)
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		e.err = ctx.Err()
		r.forget(e)
		return
	}
	start := time.Now()
	e.objs, e.err = r.render(ctx, in)
	<-r.sem
	r.renders.Add(1)
	r.log.Debug("rendered", "app", in.AppName, "path", in.Source.Path, "objects", len(e.objs), "duration", time.Since(start), "error", e.err)
	if isContextErr(e.err) || errors.Is(e.err, renderproc.ErrWorker) {
		r.forget(e) // not about the content: render again next time
	}
}

// forget drops e from the cache if it is still there.
func (r *Renderer) forget(e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.entries[e.key]; ok && el.Value.(*entry) == e {
		r.lru.Remove(el)
		delete(r.entries, e.key)
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Source renders in without caching, with e for what is not plain YAML
// (nil e: such sources are errors wrapping ErrNoEngine). It is what a
// render worker runs; Renderer.Render calls it.
func Source(ctx context.Context, e Engines, in Input) ([]*unstructured.Unstructured, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root, err := OpenRoot(in.Root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	dir, err := root.Dir(in.Source.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: source.path: %w", ErrRender, err)
	}
	var objs []Origined
	switch Detect(root, dir, in.Source) {
	case KindHelm:
		if e == nil {
			return nil, fmt.Errorf("%w: helm chart %s: %w", ErrRender, dir, ErrNoEngine)
		}
		objs, err = e.Helm(ctx, root, dir, in)
	case KindKustomize:
		if e == nil {
			return nil, fmt.Errorf("%w: kustomize %s: %w", ErrRender, dir, ErrNoEngine)
		}
		objs, err = e.Kustomize(ctx, root, dir, in)
	default:
		objs, err = renderDirectory(ctx, e, root, dir, in.Source.Directory)
	}
	if err != nil {
		if isContextErr(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrRender, err)
	}
	out, err := checkObjects(objs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRender, err)
	}
	return out, nil
}

// Origined is an object and where it came from ("path/file.yaml").
type Origined struct {
	Obj    *unstructured.Unstructured
	Origin string
}

// checkObjects validates objects, refuses duplicates naming both origins
// and returns them in canonical order.
func checkObjects(objs []Origined) ([]*unstructured.Unstructured, error) {
	seen := make(map[manifest.Key]string, len(objs))
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if err := manifest.Validate(o.Obj); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Origin, err)
		}
		k := manifest.KeyOf(o.Obj)
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s is defined twice: in %s and in %s", k, prev, o.Origin)
		}
		seen[k] = o.Origin
		out = append(out, o.Obj)
	}
	manifest.SortObjects(out)
	return out, nil
}
