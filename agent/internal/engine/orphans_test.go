//go:build !unit

package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

var (
	gvrSecret         = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrServiceAccount = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
)

// TestOrphanedResources: on a real API server, an app whose sync policy
// asks for orphaned-resource monitoring reports the objects of its
// namespace that nothing manages: not its own objects nor another app's,
// not an object another object owns, not the namespace's default
// ServiceAccount or kube-root-ca.crt, not what its ignore globs match, and
// nothing from a namespace that is not its destination. An app of the same
// namespace whose project whitelists Secrets counts only the Secret; an
// app without monitoring reports nothing. A deleted orphan leaves the
// report at the next look.
func TestOrphanedResources(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	other, _ := testNamespaces(t)
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, OrphansEvery: 300 * time.Millisecond})

	// Made by hand, before and after the apps: the orphans and what is not.
	stray := mustCreate(t, gvrConfigMap, ns, configMap("stray", map[string]any{"k": "v"}))
	owned := configMap("stray-child", nil)
	owned.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "stray", UID: stray.GetUID()}})
	mustCreate(t, gvrConfigMap, ns, owned)
	mustCreate(t, gvrConfigMap, ns, configMap("ignored-1", nil))
	mustCreate(t, gvrConfigMap, ns, configMap("kube-root-ca.crt", nil))
	createIfAbsent(t, gvrServiceAccount, ns, testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"}}))
	mustCreate(t, gvrSecret, ns, testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "loose"}, "stringData": map[string]any{"a": "b"}}))
	mustCreate(t, gvrConfigMap, other, configMap("elsewhere", nil))

	watched := auto(true, true)
	watched.OrphanedResources = &apiv1alpha1.OrphanedResources{Warn: true, Ignore: []*apiv1alpha1.OrphanedKey{{Group: "", Kind: "ConfigMap", Name: "ignored-*"}}}
	secretsOnly := auto(true, true)
	secretsOnly.OrphanedResources = &apiv1alpha1.OrphanedResources{Kinds: []*apiv1alpha1.OrphanedKey{{Group: "", Kind: "Secret"}}}
	accept(t, e,
		bundle(t, "web", ns, watched, nil, service("web"), configMap("web-cm", nil)),
		bundle(t, "neighbour", ns, auto(true, true), nil, configMap("neighbour-cm", nil)),
		bundle(t, "secrets", ns, secretsOnly, nil, configMap("secrets-cm", nil)),
	)
	for _, app := range []string{"web", "neighbour", "secrets"} {
		waitStatus(t, e, app, 30*time.Second, synced)
	}

	ref := func(kind, name string) *apiv1alpha1.ObjectRef {
		return &apiv1alpha1.ObjectRef{Version: "v1", Kind: kind, Namespace: ns, Name: name}
	}
	wantReport := func(app string, want *apiv1alpha1.OrphanedReport) {
		t.Helper()
		var got *apiv1alpha1.OrphanedReport
		testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
			got = statusOf(e, app).GetOrphaned()
			d := cmp.Diff(want, got, protocmp.Transform())
			return d == "", fmt.Sprintf("orphaned of %s (-want +got):\n%s", app, d)
		})
	}
	wantReport("web", &apiv1alpha1.OrphanedReport{Count: 2, Warn: true, Objects: []*apiv1alpha1.ObjectRef{ref("ConfigMap", "stray"), ref("Secret", "loose")}})
	wantReport("secrets", &apiv1alpha1.OrphanedReport{Count: 1, Objects: []*apiv1alpha1.ObjectRef{ref("Secret", "loose")}})
	if got := statusOf(e, "neighbour").GetOrphaned(); got != nil {
		t.Errorf("an app without orphanedResources reports %v", got)
	}

	// Deleted by hand: gone from the report at the next look.
	if err := dyn.Resource(gvrSecret).Namespace(ns).Delete(context.Background(), "loose", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wantReport("web", &apiv1alpha1.OrphanedReport{Count: 1, Warn: true, Objects: []*apiv1alpha1.ObjectRef{ref("ConfigMap", "stray")}})
	wantReport("secrets", &apiv1alpha1.OrphanedReport{})

	// The monitoring switched off: the report goes away.
	accept(t, e, bundle(t, "web", ns, auto(true, true), nil, service("web"), configMap("web-cm", nil)))
	testenv.Eventually(t, 30*time.Second, func(context.Context) (bool, string) {
		got := statusOf(e, "web").GetOrphaned()
		return got == nil, fmt.Sprintf("orphaned of web after the monitoring was switched off: %v", got)
	})
}

// TestOrphanedResourcesOutsideAgentNamespaces: an agent limited to some
// namespaces does not list a destination outside them; the report says
// why instead of failing.
func TestOrphanedResourcesOutsideAgentNamespaces(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	outside, _ := testNamespaces(t)
	mustCreate(t, gvrConfigMap, outside, configMap("stray", nil))
	mustCreate(t, gvrConfigMap, ns, configMap("stray", nil))
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, Namespaces: []string{ns, agentNS}, OrphansEvery: 300 * time.Millisecond})
	p := auto(true, true)
	p.OrphanedResources = &apiv1alpha1.OrphanedResources{Warn: true}
	accept(t, e, bundle(t, "inside", ns, p, nil, configMap("inside-cm", nil)), bundle(t, "outside", outside, p, nil))
	waitStatus(t, e, "inside", 30*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetOrphaned().GetCount() == 1 && s.GetOrphaned().GetObjects()[0].GetName() == "stray"
	})
	st := waitStatus(t, e, "outside", 30*time.Second, func(s *apiv1alpha1.AppStatus) bool { return s.GetOrphaned() != nil })
	if got := st.GetOrphaned(); got.GetCount() != 0 || got.GetError() == "" {
		t.Errorf("orphaned of an app outside the agent's namespaces = %v, want no objects and an error saying why", got)
	}
}

func createIfAbsent(t testing.TB, gvr schema.GroupVersionResource, ns string, obj *unstructured.Unstructured) {
	t.Helper()
	_, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create %s %s: %v", gvr.Resource, obj.GetName(), err)
	}
}
