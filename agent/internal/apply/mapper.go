package apply

import (
	"context"
	"encoding/json"
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

	mu     sync.Mutex
	mapper meta.RESTMapper // nil until the first read
	gen    uint64          // counts reads, to coalesce concurrent refreshes
}

// NewMapper returns a Mapper reading discovery with cfg.
func NewMapper(cfg *rest.Config) (*Mapper, error) {
	rc, err := rest.UnversionedRESTClientFor(dynamic.ConfigFor(cfg))
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
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
	if mp, err = m.refresh(gen); err != nil {
		return nil, err
	}
	return mp.RESTMapping(gvk.GroupKind(), versions(gvk)...)
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

// current returns the mapper, reading discovery the first time.
func (m *Mapper) current() (meta.RESTMapper, uint64, error) {
	m.mu.Lock()
	mp, gen := m.mapper, m.gen
	m.mu.Unlock()
	if mp != nil {
		return mp, gen, nil
	}
	mp, err := m.refresh(gen)
	return mp, gen + 1, err
}

// refresh reads discovery again unless another caller already did since
// generation seen.
func (m *Mapper) refresh(seen uint64) (meta.RESTMapper, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != seen && m.mapper != nil {
		return m.mapper, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
	defer cancel()
	var groups []apidiscoveryv2.APIGroupDiscovery
	for _, root := range []string{"/api", "/apis"} {
		list, err := m.read(ctx, root)
		if err != nil {
			return nil, err
		}
		groups = append(groups, list.Items...)
	}
	m.mapper, m.gen = restMapper(groups), m.gen+1
	return m.mapper, nil
}

// read fetches the aggregated discovery document of root (/api or /apis).
func (m *Mapper) read(ctx context.Context, root string) (*apidiscoveryv2.APIGroupDiscoveryList, error) {
	res := m.client.Get().AbsPath(root).SetHeader("Accept", acceptDiscovery).Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", root, err)
	}
	var ct string
	res.ContentType(&ct)
	if _, params, err := mime.ParseMediaType(ct); err != nil || params["as"] != "APIGroupDiscoveryList" {
		return nil, fmt.Errorf("discovery %s: the API server answered %q, not aggregated discovery (apidiscovery.k8s.io/v2, Kubernetes 1.30 or later is needed)", root, ct)
	}
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("discovery %s: %w", root, err)
	}
	return &list, nil
}

// restMapper builds a mapper from discovery documents. Versions keep the
// server's order, which is its preference; stale versions (an aggregated
// API server that did not answer) are left out.
func restMapper(groups []apidiscoveryv2.APIGroupDiscovery) meta.RESTMapper {
	var order []schema.GroupVersion
	for _, g := range groups {
		for _, v := range g.Versions {
			if v.Freshness == apidiscoveryv2.DiscoveryFreshnessStale {
				continue
			}
			order = append(order, schema.GroupVersion{Group: g.Name, Version: v.Version})
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
	return mp
}
