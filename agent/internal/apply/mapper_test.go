package apply

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func res(resource, singular, kind string, scope apidiscoveryv2.ResourceScope) apidiscoveryv2.APIResourceDiscovery {
	return apidiscoveryv2.APIResourceDiscovery{Resource: resource, SingularResource: singular, Scope: scope, ResponseKind: &metav1.GroupVersionKind{Kind: kind}}
}

func TestRestMapper(t *testing.T) {
	groups := []apidiscoveryv2.APIGroupDiscovery{
		{Versions: []apidiscoveryv2.APIVersionDiscovery{{Version: "v1", Resources: []apidiscoveryv2.APIResourceDiscovery{
			res("configmaps", "configmap", "ConfigMap", apidiscoveryv2.ScopeNamespace),
			res("namespaces", "namespace", "Namespace", apidiscoveryv2.ScopeCluster),
			{Resource: "bindings", Scope: apidiscoveryv2.ScopeNamespace}, // no kind: skipped
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "example.com"}, Versions: []apidiscoveryv2.APIVersionDiscovery{
			{Version: "v2", Resources: []apidiscoveryv2.APIResourceDiscovery{res("widgets", "widget", "Widget", apidiscoveryv2.ScopeNamespace)}},
			{Version: "v1", Resources: []apidiscoveryv2.APIResourceDiscovery{res("widgets", "widget", "Widget", apidiscoveryv2.ScopeNamespace)}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "metrics.example.com"}, Versions: []apidiscoveryv2.APIVersionDiscovery{
			{Version: "v1", Freshness: apidiscoveryv2.DiscoveryFreshnessStale, Resources: []apidiscoveryv2.APIResourceDiscovery{res("pods", "pod", "PodMetrics", apidiscoveryv2.ScopeNamespace)}},
		}},
	}
	mp, stale := restMapper(groups)
	if diff := cmp.Diff(map[schema.GroupVersion]bool{{Group: "metrics.example.com", Version: "v1"}: true}, stale); diff != "" {
		t.Errorf("stale versions (-want +got):\n%s", diff)
	}

	tests := []struct {
		name       string
		gvk        schema.GroupVersionKind
		want       schema.GroupVersionResource
		namespaced bool
		noMatch    bool
	}{
		{name: "core namespaced", gvk: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, want: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, namespaced: true},
		{name: "core cluster-scoped", gvk: schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, want: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}},
		{name: "preferred version first", gvk: schema.GroupVersionKind{Group: "example.com", Kind: "Widget"}, want: schema.GroupVersionResource{Group: "example.com", Version: "v2", Resource: "widgets"}, namespaced: true},
		{name: "named older version", gvk: schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, want: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}, namespaced: true},
		{name: "unknown kind", gvk: schema.GroupVersionKind{Version: "v1", Kind: "Binding"}, noMatch: true},
		{name: "stale aggregated API left out", gvk: schema.GroupVersionKind{Group: "metrics.example.com", Version: "v1", Kind: "PodMetrics"}, noMatch: true},
		{name: "unserved version", gvk: schema.GroupVersionKind{Group: "example.com", Version: "v3", Kind: "Widget"}, noMatch: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mp.RESTMapping(tt.gvk.GroupKind(), versions(tt.gvk)...)
			if tt.noMatch {
				if !meta.IsNoMatchError(err) {
					t.Fatalf("RESTMapping(%s) = %v, %v; want a no-match error", tt.gvk, m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, m.Resource); diff != "" {
				t.Errorf("resource (-want +got):\n%s", diff)
			}
			if got := m.Scope.Name() == meta.RESTScopeNameNamespace; got != tt.namespaced {
				t.Errorf("namespaced = %v, want %v", got, tt.namespaced)
			}
		})
	}
}
