//go:build !unit

package capabilities

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	if testenv.UnitOnly() {
		os.Exit(m.Run())
	}
	e, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "capabilities integration tests:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	os.Exit(code)
}

// TestAPIVersions lists group/versions and kinds as Helm's APIVersions
// does, leaving out stale aggregated APIs.
func TestAPIVersions(t *testing.T) {
	kind := func(k string) *metav1.GroupVersionKind { return &metav1.GroupVersionKind{Kind: k} }
	groups := []apidiscoveryv2.APIGroupDiscovery{
		{Versions: []apidiscoveryv2.APIVersionDiscovery{{Version: "v1", Resources: []apidiscoveryv2.APIResourceDiscovery{
			{Resource: "configmaps", ResponseKind: kind("ConfigMap")},
			{Resource: "pods", ResponseKind: kind("Pod"), Subresources: []apidiscoveryv2.APISubresourceDiscovery{{Subresource: "eviction", ResponseKind: kind("Eviction")}, {Subresource: "status", ResponseKind: kind("Pod")}}},
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "apps"}, Versions: []apidiscoveryv2.APIVersionDiscovery{{Version: "v1", Resources: []apidiscoveryv2.APIResourceDiscovery{
			{Resource: "deployments", ResponseKind: kind("Deployment"), Subresources: []apidiscoveryv2.APISubresourceDiscovery{{Subresource: "scale", ResponseKind: &metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}}}},
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "metrics.k8s.io"}, Versions: []apidiscoveryv2.APIVersionDiscovery{{Version: "v1beta1", Freshness: apidiscoveryv2.DiscoveryFreshnessStale, Resources: []apidiscoveryv2.APIResourceDiscovery{
			{Resource: "pods", ResponseKind: kind("PodMetrics")},
		}}}},
	}
	want := []string{"apps/v1", "apps/v1/Deployment", "apps/v1/Scale", "v1", "v1/ConfigMap", "v1/Eviction", "v1/Pod"}
	if diff := cmp.Diff(want, APIVersions(groups)); diff != "" {
		t.Errorf("API versions (-want +got):\n%s", diff)
	}
}

// TestReporterNoticesCRDs runs a Reporter against a real API server: it
// reads the server's version and APIs, then reports a CRD installed and
// removed, each as one change.
func TestReporterNoticesCRDs(t *testing.T) {
	testenv.Need(t, env != nil)
	dc, err := apply.NewDiscoveryClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(env.Config)
	r := New(dc, dyn, 100*time.Millisecond, hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	has := func(v string) bool { return r.Current() != nil && slices.Contains(r.Current().GetApiVersions(), v) }
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
		return has("apps/v1/Deployment"), "first read"
	})
	first := r.Current()
	if first.GetKubeVersion() == "" || !has("v1") || !has("v1/ConfigMap") || has("gizmos.caps.test/v1") {
		t.Fatalf("first read: version %q, %d API versions", first.GetKubeVersion(), len(first.GetApiVersions()))
	}

	select { // the first read's signal
	case <-r.Changed():
	default:
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := testenv.Obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gizmos.caps.test"},
		"spec": map[string]any{
			"group": "caps.test", "scope": "Namespaced",
			"names": map[string]any{"kind": "Gizmo", "plural": "gizmos", "singular": "gizmo"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	})
	if _, err := dyn.Resource(crds).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
		return has("caps.test/v1/Gizmo") && has("caps.test/v1"), "the CRD reported"
	})
	select {
	case <-r.Changed():
	default:
		t.Error("no change signalled")
	}
	if err := dyn.Resource(crds).Delete(ctx, "gizmos.caps.test", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
		return !has("caps.test/v1/Gizmo") && !has("caps.test/v1"), "the CRD's removal reported"
	})
}
