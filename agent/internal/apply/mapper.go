package apply

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// Mapper maps kinds to resources through discovery, cached in memory, and
// re-reads discovery once when a kind is unknown (a CRD may just have been
// created).
type Mapper struct {
	mu     sync.Mutex // serialises resets
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// NewMapper returns a Mapper over dc.
func NewMapper(dc discovery.DiscoveryInterface) *Mapper {
	return &Mapper{mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// Mapping returns the REST mapping of gvk, refreshing discovery once if the
// kind is unknown. The error wraps a meta no-match error when the kind does
// not exist.
func (m *Mapper) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	mp, err := m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil || !meta.IsNoMatchError(err) {
		return mp, err
	}
	m.mu.Lock()
	m.mapper.Reset()
	m.mu.Unlock()
	return m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// Namespaced reports whether gk is namespaced (any served version).
func (m *Mapper) Namespaced(gk schema.GroupKind) (bool, error) {
	mp, err := m.Mapping(gk.WithVersion(""))
	if err != nil {
		return false, fmt.Errorf("kind %s: %w", gk, err)
	}
	return mp.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// WaitFor waits until every kind in gvks maps, re-reading discovery every
// 100 ms, until timeout. It is used after CRDs become Established, because
// discovery may serve a new kind a moment later.
func (m *Mapper) WaitFor(ctx context.Context, gvks []schema.GroupVersionKind, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		for _, gvk := range gvks {
			if _, err := m.Mapping(gvk); err != nil {
				last = err
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("wait for kinds: %w", last)
	}
	return err
}
