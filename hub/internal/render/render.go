package render

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ErrRender is wrapped by every error about the content being rendered (as
// opposed to a cancelled context).
var ErrRender = errors.New("render")

// Input is what one render reads.
type Input struct {
	// Root is the repository checkout; nothing outside it is read.
	Root string
	// Source is the effective source (see target.Effective).
	Source app.Source
	// Namespace is the destination namespace (Helm's release namespace).
	Namespace string
	// AppName is the default Helm release name.
	AppName string
	// Capabilities are the target cluster's, for Helm charts; nil renders
	// with Helm's client-only defaults (Kubernetes v1.20). Other kinds of
	// source ignore them: leave them nil there, so that the render is
	// shared by every cluster.
	Capabilities *Capabilities `json:"capabilities,omitempty"`
	// Refs are the checkouts of a multi-source app's ref sources, by ref
	// name: Helm value files "$<ref>/<path>" are read from them (inside
	// them only). The cache key must account for their content (see
	// CacheKey's treeID).
	Refs map[string]string `json:"refs,omitempty"`
	// KustomizeHelm turns on kustomizations' helmCharts (nil: an error
	// naming the kustomization); they render with Capabilities.
	KustomizeHelm *KustomizeHelm `json:"kustomizeHelm,omitempty"`
	// RemoteBases turns on kustomizations' remote bases, read from the
	// checkouts it names (nil: an error naming the kustomization, the
	// entry and the hub option). The cache key accounts for their commits.
	RemoteBases *RemoteBases `json:"remoteBases,omitempty"`
}

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

// CacheKey returns the cache key for rendering in from the repository tree
// treeID (a commit or tree hash that identifies everything the render may
// read: pass the root tree unless the source is known to read only its own
// path). It hashes the canonical JSON of the parameters that change the
// output: the cleaned path, the directory, Helm and Kustomize settings, the
// namespace, the application name and the digest of the capabilities
// (when set). Root, repoURL and targetRevision are left out: the same tree
// renders the same wherever it is checked out.
func CacheKey(treeID string, in Input) string {
	p := struct {
		Path      string         `json:"path"`
		Directory *app.Directory `json:"directory,omitempty"`
		Helm      *app.Helm      `json:"helm,omitempty"`
		Kustomize *app.Kustomize `json:"kustomize,omitempty"`
		Namespace string         `json:"namespace"`
		AppName   string         `json:"appName"`
	}{path.Clean("/" + in.Source.Path), in.Source.Directory, in.Source.Helm, in.Source.Kustomize, in.Namespace, in.AppName}
	js, err := json.Marshal(p) // map keys come sorted
	if err != nil {
		// Only a value that JSON cannot encode (never produced by
		// decoding definitions) gets here; such inputs never share.
		js = fmt.Appendf(nil, "%p", &p)
	}
	h := sha256.New()
	fmt.Fprintf(h, "flotilla.render.v1\x00%s\x00", treeID)
	h.Write(js)
	if in.Capabilities != nil {
		fmt.Fprintf(h, "\x00capabilities\x00%s", in.Capabilities.Digest())
	}
	if in.KustomizeHelm != nil {
		// The fetched charts' folders are named by their archives' digests.
		keys := slices.Sorted(maps.Keys(in.KustomizeHelm.Charts))
		fmt.Fprintf(h, "\x00kustomizeHelm")
		for _, k := range keys {
			fmt.Fprintf(h, "\x00%s\x00%s", k, filepath.Base(filepath.Dir(in.KustomizeHelm.Charts[k])))
		}
	}
	if in.RemoteBases != nil {
		fmt.Fprintf(h, "\x00remoteBases")
		for _, k := range slices.Sorted(maps.Keys(in.RemoteBases.Checkouts)) {
			fmt.Fprintf(h, "\x00%s\x00%s", k, in.RemoteBases.Checkouts[k].Commit)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// renderSource renders in without caching.
func renderSource(ctx context.Context, in Input) ([]*unstructured.Unstructured, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root, err := openRepoRoot(in.Root)
	if err != nil {
		return nil, err
	}
	defer root.close()
	dir, err := root.dir(in.Source.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: source.path: %w", ErrRender, err)
	}
	kind := detect(root, dir, in.Source)
	var objs []origined
	switch kind {
	case kindHelm:
		objs, err = renderHelm(ctx, root, dir, in)
	case kindKustomize:
		objs, err = renderKustomize(ctx, root, dir, in)
	default:
		objs, err = renderDirectory(ctx, root, dir, in.Source.Directory)
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

// origined is an object and where it came from ("path/file.yaml").
type origined struct {
	obj    *unstructured.Unstructured
	origin string
}

// checkObjects validates objects, refuses duplicates naming both origins
// and returns them in canonical order.
func checkObjects(objs []origined) ([]*unstructured.Unstructured, error) {
	seen := make(map[manifest.Key]string, len(objs))
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if err := manifest.Validate(o.obj); err != nil {
			return nil, fmt.Errorf("%s: %w", o.origin, err)
		}
		k := manifest.KeyOf(o.obj)
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s is defined twice: in %s and in %s", k, prev, o.origin)
		}
		seen[k] = o.origin
		out = append(out, o.obj)
	}
	manifest.SortObjects(out)
	return out, nil
}
