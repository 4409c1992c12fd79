//go:build !unit

package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// withSyncOptions returns obj with Argo CD's sync-options annotation.
func withSyncOptions(obj *unstructured.Unstructured, opts string) *unstructured.Unstructured {
	obj = obj.DeepCopy()
	obj.SetAnnotations(map[string]string{"argocd.argoproj.io/sync-options": opts})
	return obj
}

// TestDeleteFalseKeepsObjectOnAppDeletion: Argo CD keeps an object with
// sync option Delete=false (or Delete=confirm, which Flotilla cannot ask
// for) when its app is deleted with cascade; the app's other objects go.
func TestDeleteFalseKeepsObjectOnAppDeletion(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "del", ns, auto(true, true), nil,
		configMap("gone", nil), withSyncOptions(configMap("kept", nil), "Delete=false"), withSyncOptions(configMap("confirm", nil), "Delete=confirm")))
	waitStatus(t, e, "del", 20*time.Second, synced)
	if err := e.Accept(context.Background(), nil, []string{"del"}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "del", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return s.GetRemoved() })
	if _, ok := get(t, gvrConfigMap, ns, "gone"); ok {
		t.Error("ConfigMap gone (no option) survived its app's deletion")
	}
	for _, name := range []string{"kept", "confirm"} {
		if _, ok := get(t, gvrConfigMap, ns, name); !ok {
			t.Errorf("ConfigMap %s (Delete=false/confirm) was deleted with its app", name)
		}
	}
}

// TestPrunePropagationPolicy: PrunePropagationPolicy=orphan prunes with
// orphan propagation. On an API server without a garbage collector the
// pruned object stays, marked for deletion with the "orphan" finalizer;
// the default (background) deletes it at once.
func TestPrunePropagationPolicy(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	for _, tc := range []struct {
		name, opt string
		finalizer string // "" means deleted at once
	}{
		{"background", "", ""},
		{"orphan", "PrunePropagationPolicy=orphan", "orphan"},
		{"foreground", "PrunePropagationPolicy=foreground", "foregroundDeletion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, agentNS := testNamespaces(t)
			e := startEngine(t, agentNS)
			var opts []string
			if tc.opt != "" {
				opts = append(opts, tc.opt)
			}
			accept(t, e, bundle(t, "prop", ns, auto(true, true, opts...), nil, configMap("stay", nil), configMap("pruned", nil)))
			waitStatus(t, e, "prop", 20*time.Second, synced)
			second := bundle(t, "prop", ns, auto(true, true, opts...), nil, configMap("stay", nil))
			accept(t, e, second)
			waitStatus(t, e, "prop", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
				return s.GetDigest() == second.GetDigest() && s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_SUCCEEDED
			})
			obj, ok := get(t, gvrConfigMap, ns, "pruned")
			switch {
			case tc.finalizer == "" && ok:
				t.Errorf("pruned ConfigMap still exists: %v", obj.GetFinalizers())
			case tc.finalizer != "" && !ok:
				t.Errorf("pruned ConfigMap is gone; want it kept with finalizer %s (no garbage collector runs here)", tc.finalizer)
			case tc.finalizer != "" && (obj.GetDeletionTimestamp() == nil || !slices.Contains(obj.GetFinalizers(), tc.finalizer)):
				t.Errorf("pruned ConfigMap: deletionTimestamp %v, finalizers %v; want finalizer %s", obj.GetDeletionTimestamp(), obj.GetFinalizers(), tc.finalizer)
			}
		})
	}
}

// TestIgnoreExtraneous: an object left over (prune off) makes its app
// OutOfSync, unless it carries argocd.argoproj.io/compare-options:
// IgnoreExtraneous.
func TestIgnoreExtraneous(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	ignored := configMap("ignored", nil)
	ignored.SetAnnotations(map[string]string{"argocd.argoproj.io/compare-options": "IgnoreExtraneous"})
	accept(t, e, bundle(t, "extra", ns, auto(true, false), nil, configMap("stay", nil), ignored, configMap("counted", nil)))
	waitStatus(t, e, "extra", 20*time.Second, synced)

	// ignored leaves the bundle: kept (prune off) and not counted.
	second := bundle(t, "extra", ns, auto(true, false), nil, configMap("stay", nil), configMap("counted", nil))
	accept(t, e, second)
	st := waitStatus(t, e, "extra", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetDigest() == second.GetDigest() && objectStatus(s, "ConfigMap", "ignored") != nil
	})
	if st.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
		t.Errorf("app sync = %v with only an IgnoreExtraneous object left over, want Synced", st.GetSync())
	}
	// counted leaves the bundle too: the app is OutOfSync.
	third := bundle(t, "extra", ns, auto(true, false), nil, configMap("stay", nil))
	accept(t, e, third)
	waitStatus(t, e, "extra", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetDigest() == third.GetDigest() && s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC && objectStatus(s, "ConfigMap", "counted") != nil
	})
}

// TestSkipDryRunOnMissingResource: a custom resource whose CRD another app
// installs. Without the option the bundle is refused at once (its kind is
// unknown); with it, the app's sync waits (failing and retrying) and
// converges once the CRD exists, the app's other objects included.
func TestSkipDryRunOnMissingResource(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	group := "later-" + ns + ".example.com"
	cr := func(name string) *unstructured.Unstructured {
		return testenv.Obj(map[string]any{"apiVersion": group + "/v1", "kind": "Widget", "metadata": map[string]any{"name": name}, "spec": map[string]any{"color": "red"}})
	}
	pol := auto(true, true)
	pol.Retry = &apiv1alpha1.Retry{Limit: -1, BackoffDurationMs: 200, BackoffFactor: 1, BackoffMaxDurationMs: 200}
	accept(t, e, bundle(t, "plain", ns, pol, nil, cr("plain"), configMap("c", nil)))
	st := waitStatus(t, e, "plain", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return strings.Contains(s.GetMessage(), "Widget") })
	t.Logf("without the option: %s", st.GetMessage())

	withOpt := withSyncOptions(cr("w"), "SkipDryRunOnMissingResource=true")
	accept(t, e, bundle(t, "skip", ns, pol, nil, withOpt, configMap("c2", nil)))
	waitStatus(t, e, "skip", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	mustCreate(t, schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, "", testenv.Obj(crd(group, "Widget", "widgets")))
	waitStatus(t, e, "skip", 60*time.Second, synced)
	if _, ok := get(t, schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}, ns, "w"); !ok {
		t.Error("the Widget was not created once its CRD exists")
	}
	if _, ok := get(t, gvrConfigMap, ns, "c2"); !ok {
		t.Error("the app's ConfigMap was not created")
	}
}
