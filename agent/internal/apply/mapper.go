package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"sync"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// acceptDiscovery asks for the aggregated discovery document
// (apidiscovery.k8s.io/v2, served since Kubernetes 1.30), which lists every
// group, version and resource in one answer per root.
const acceptDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// discoveryTimeout bounds one read of discovery.
const discoveryTimeout = 30 * time.Second

// Mapper maps kinds to resources through the API server's aggregated
// discovery, kept in memory, and re-reads discovery when a kind is unknown
// (a CRD may just have been created).
//
// It does not use client-go's discovery package: that links the typed
// scheme of every built-in API group and the OpenAPI models (about 85
// packages and 9 MiB of resident memory in the agent) for what is two GET
// requests here. The mapping itself is apimachinery's DefaultRESTMapper.
type Mapper struct {
	client rest.Interface

	fetch sync.Mutex // one read of discovery at a time

	mu     sync.Mutex // guards the fields below; never held during a read
	mapper meta.RESTMapper
	gen    uint64                       // counts reads, to coalesce concurrent refreshes
	readAt time.Time                    // end of the last read
	stale  map[schema.GroupVersion]bool // served by an aggregated API server that did not answer
}

// minReread is the least time between two reads of discovery caused by
// unknown kinds (a kind that does not exist must not cost a read per
// lookup).
const minReread = 500 * time.Millisecond

// ErrStaleAPI is wrapped when a kind belongs to an aggregated API that is
// served but did not answer discovery: the kind may well exist, so it is
// not a no-match error (which would let callers take its objects as gone).
var ErrStaleAPI = errors.New("its aggregated API server is unavailable")

// NewMapper returns a Mapper reading discovery with cfg.
func NewMapper(cfg *rest.Config) (*Mapper, error) {
	rc, err := NewDiscoveryClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Mapper{client: rc}, nil
}

// Mapping returns the REST mapping of gvk (any served version, the
// preferred first, when gvk.Version is empty), reading discovery again once
// if the kind is unknown. The error wraps a meta no-match error when the
// kind does not exist.
func (m *Mapper) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	mp, gen, err := m.current()
	if err != nil {
		return nil, err
	}
	mapping, err := mp.RESTMapping(gvk.GroupKind(), versions(gvk)...)
	if err == nil || !meta.IsNoMatchError(err) {
		return mapping, err
	}
	if mp, _, err = m.reread(gen); err != nil {
		return nil, err
	}
	mapping, err = mp.RESTMapping(gvk.GroupKind(), versions(gvk)...)
	if err != nil && meta.IsNoMatchError(err) && m.isStale(gvk) {
		return nil, fmt.Errorf("kind %s: %w", gvk, ErrStaleAPI)
	}
	return mapping, err
}

// isStale reports whether gvk's group (and version, when given) is served
// by an aggregated API server that did not answer the last read.
func (m *Mapper) isStale(gvk schema.GroupVersionKind) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for gv := range m.stale {
		if gv.Group == gvk.Group && (gvk.Version == "" || gv.Version == gvk.Version) {
			return true
		}
	}
	return false
}

func versions(gvk schema.GroupVersionKind) []string {
	if gvk.Version == "" {
		return nil
	}
	return []string{gvk.Version}
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

// current returns the mapper and its generation, reading discovery the
// first time.
func (m *Mapper) current() (meta.RESTMapper, uint64, error) {
	m.mu.Lock()
	mp, gen := m.mapper, m.gen
	m.mu.Unlock()
	if mp != nil {
		return mp, gen, nil
	}
	return m.reread(gen)
}

// reread reads discovery again unless another caller did since generation
// seen, or the last read ended less than minReread ago.
func (m *Mapper) reread(seen uint64) (meta.RESTMapper, uint64, error) {
	m.fetch.Lock()
	defer m.fetch.Unlock()
	m.mu.Lock()
	mp, gen, at := m.mapper, m.gen, m.readAt
	m.mu.Unlock()
	if mp != nil && (gen != seen || time.Since(at) < minReread) {
		return mp, gen, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
	defer cancel()
	groups, err := Discover(ctx, m.client)
	if err != nil {
		return nil, gen, err
	}
	mp, stale := restMapper(groups)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.mapper, m.readAt, m.stale = mp, time.Now(), stale
	return mp, m.gen, nil
}

// Discover reads the API server's aggregated discovery (/api, then /apis)
// with client, an unversioned REST client of the server (see
// NewDiscoveryClient).
func Discover(ctx context.Context, client rest.Interface) ([]apidiscoveryv2.APIGroupDiscovery, error) {
	var groups []apidiscoveryv2.APIGroupDiscovery
	for _, root := range []string{"/api", "/apis"} {
		list, err := readDiscovery(ctx, client, root)
		if err != nil {
			return nil, err
		}
		groups = append(groups, list.Items...)
	}
	return groups, nil
}

// NewDiscoveryClient returns the REST client Discover reads with.
func NewDiscoveryClient(cfg *rest.Config) (rest.Interface, error) {
	rc, err := rest.UnversionedRESTClientFor(dynamic.ConfigFor(cfg))
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return rc, nil
}

// readDiscovery fetches the aggregated discovery document of root (/api
// or /apis).
func readDiscovery(ctx context.Context, client rest.Interface, root string) (*apidiscoveryv2.APIGroupDiscoveryList, error) {
	res := client.Get().AbsPath(root).SetHeader("Accept", acceptDiscovery).Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", root, err)
	}
	var ct string
	res.ContentType(&ct)
	if _, params, err := mime.ParseMediaType(ct); err != nil || params["g"] != "apidiscovery.k8s.io" || params["v"] != "v2" || params["as"] != "APIGroupDiscoveryList" {
		return nil, fmt.Errorf("discovery %s: the API server answered %q, not aggregated discovery (apidiscovery.k8s.io/v2, Kubernetes 1.30 or later is needed)", root, ct)
	}
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("discovery %s: %w", root, err)
	}
	return &list, nil
}

// restMapper builds a mapper from discovery documents. Versions keep the
// server's order, which is its preference. Stale versions (an aggregated
// API server that did not answer) are left out and returned apart.
func restMapper(groups []apidiscoveryv2.APIGroupDiscovery) (meta.RESTMapper, map[schema.GroupVersion]bool) {
	stale := map[schema.GroupVersion]bool{}
	var order []schema.GroupVersion
	for _, g := range groups {
		for _, v := range g.Versions {
			gv := schema.GroupVersion{Group: g.Name, Version: v.Version}
			if v.Freshness == apidiscoveryv2.DiscoveryFreshnessStale {
				stale[gv] = true
				continue
			}
			order = append(order, gv)
		}
	}
	mp := meta.NewDefaultRESTMapper(order)
	for _, g := range groups {
		for _, v := range g.Versions {
			if v.Freshness == apidiscoveryv2.DiscoveryFreshnessStale {
				continue
			}
			gv := schema.GroupVersion{Group: g.Name, Version: v.Version}
			for _, r := range v.Resources {
				if r.ResponseKind == nil || r.ResponseKind.Kind == "" {
					continue
				}
				scope := meta.RESTScopeRoot
				if r.Scope == apidiscoveryv2.ScopeNamespace {
					scope = meta.RESTScopeNamespace
				}
				singular := r.SingularResource
				if singular == "" {
					singular = r.Resource
				}
				mp.AddSpecific(gv.WithKind(r.ResponseKind.Kind), gv.WithResource(r.Resource), gv.WithResource(singular), scope)
			}
		}
	}
	return mp, stale
}
