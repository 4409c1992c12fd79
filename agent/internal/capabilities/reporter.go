package capabilities

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// DefaultDebounce is how long the Reporter waits after the last change
// of a CRD or APIService before it reads discovery again: installing a
// chart's CRDs is a burst of events, read once after it.
const DefaultDebounce = time.Second

// watched are the resources whose changes change what the API server
// serves.
var watched = []schema.GroupVersionResource{
	{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"},
}

// Reporter keeps the cluster's current capabilities and says when they
// change. Safe for concurrent use.
type Reporter struct {
	client   rest.Interface
	dyn      dynamic.Interface
	log      hclog.Logger
	debounce time.Duration

	changed chan struct{} // buffered 1

	mu  sync.Mutex
	cur *apiv1alpha1.ClusterCapabilities
}

// New returns a Reporter reading discovery with client and watching with
// dyn. debounce <= 0 takes DefaultDebounce.
func New(client rest.Interface, dyn dynamic.Interface, debounce time.Duration, log hclog.Logger) *Reporter {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	return &Reporter{client: client, dyn: dyn, log: log, debounce: debounce, changed: make(chan struct{}, 1)}
}

// Current returns the capabilities last read, nil before the first read
// ended. The message is shared: do not modify it.
func (r *Reporter) Current() *apiv1alpha1.ClusterCapabilities {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// Changed receives a value when Current changed (coalesced).
func (r *Reporter) Changed() <-chan struct{} { return r.changed }

// Run reads the capabilities, then watches CRDs and APIServices and reads
// again after each burst of changes, until ctx ends. A failed read is
// retried on the next change; an agent not allowed to watch those
// resources reads once per run only.
func (r *Reporter) Run(ctx context.Context) {
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, gvr := range watched {
		inf := r.informer(gvr)
		if _, err := inf.AddEventHandler(handler); err != nil {
			r.log.Warn("watch for API changes", "resource", gvr.String(), "error", err)
		}
		if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			r.log.Debug("watch for API changes", "resource", gvr.String(), "error", err)
		}); err != nil {
			r.log.Warn("watch for API changes", "resource", gvr.String(), "error", err)
		}
		wg.Go(func() { inf.RunWithContext(ctx) })
	}

	r.read(ctx)
	timer := time.NewTimer(r.debounce)
	timer.Stop()
	defer timer.Stop()
	// confirms counts the reads after a burst's read. The API server
	// serves a new kind, and stops serving a removed one, some time after
	// the CRD's last event: a moment on a quiet server, seconds on a busy
	// one. Reads at 2, 4, 8... debounce periods after the burst's read
	// catch it without another event.
	confirms := maxConfirms
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			confirms = 0
			timer.Reset(r.debounce)
		case <-timer.C:
			r.read(ctx)
			if confirms < maxConfirms {
				confirms++
				timer.Reset(r.debounce << confirms)
			}
		}
	}
}

// maxConfirms is how many reads follow a burst's read, each twice as late
// as the one before: with the default debounce the last is about two
// minutes after the burst.
const maxConfirms = 6

// informer watches gvr, keeping only the names of its objects in memory
// (CRDs are large; only their changes matter here). It is built on the
// dynamic client, not client-go's dynamicinformer, which links the typed
// informers of every built-in group (see package live).
func (r *Reporter) informer(gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	res := r.dyn.Resource(gvr)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, &unstructured.Unstructured{}, cache.SharedIndexInformerOptions{ObjectDescription: gvr.String()})
	_ = inf.SetTransform(func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		slim := &unstructured.Unstructured{Object: map[string]any{}}
		slim.SetAPIVersion(u.GetAPIVersion())
		slim.SetKind(u.GetKind())
		slim.SetName(u.GetName())
		slim.SetUID(u.GetUID())
		slim.SetResourceVersion(u.GetResourceVersion())
		return slim, nil
	})
	return inf
}

// read reads the capabilities and signals Changed when they differ from
// the last ones.
func (r *Reporter) read(ctx context.Context) {
	c, err := Read(ctx, r.client)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("read cluster capabilities", "error", err)
		}
		return
	}
	r.mu.Lock()
	same := r.cur != nil && proto.Equal(r.cur, c)
	if !same {
		r.cur = c
	}
	r.mu.Unlock()
	if same {
		return
	}
	r.log.Info("cluster capabilities", "kube_version", c.GetKubeVersion(), "api_versions", len(c.GetApiVersions()))
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

var _ hubclient.CapabilitiesSource = (*Reporter)(nil)
