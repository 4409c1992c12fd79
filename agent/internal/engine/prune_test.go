//go:build !unit

package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func TestPruneRemovedService(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "web", ns, auto(true, true), nil, deployment("web", 1, nil), service("web"), service("other")))
	waitStatus(t, e, "web", 20*time.Second, synced)
	if _, ok := get(t, gvrService, ns, "web"); !ok {
		t.Fatal("service web not created")
	}
	// An unowned Service with the same label must survive.
	stranger := service("stranger")
	stranger.SetLabels(map[string]string{"flotilla.dev/managed": "true"})
	mustCreate(t, gvrService, ns, stranger)

	next := bundle(t, "web", ns, auto(true, true), nil, deployment("web", 1, nil), service("other"))
	accept(t, e, next)
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == next.GetDigest() })
	if _, ok := get(t, gvrService, ns, "web"); ok {
		t.Fatal("service web still exists after it left the bundle")
	}
	for _, name := range []string{"other", "stranger"} {
		if _, ok := get(t, gvrService, ns, name); !ok {
			t.Fatalf("service %s was deleted", name)
		}
	}
}

func TestPruneOffAndPruneFalseKeepObjects(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	keep := configMap("keep", map[string]any{"a": "1"})
	keep.SetAnnotations(map[string]string{manifest.SyncOptionsAnnotation: "Prune=false"})
	accept(t, e, bundle(t, "cfg", ns, auto(false, true), nil, keep, configMap("drop", nil)))
	waitStatus(t, e, "cfg", 20*time.Second, synced)

	next := bundle(t, "cfg", ns, auto(false, true), nil, configMap("other", nil))
	accept(t, e, next)
	st := waitStatus(t, e, "cfg", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetDigest() == next.GetDigest() && s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_SUCCEEDED
	})
	if _, ok := get(t, gvrConfigMap, ns, "drop"); ok {
		t.Error("configmap drop not pruned")
	}
	if _, ok := get(t, gvrConfigMap, ns, "keep"); !ok {
		t.Error("configmap keep (Prune=false) was pruned")
	}
	if o := objectStatus(st, "ConfigMap", "keep"); o.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC {
		t.Errorf("kept object status = %v, want OutOfSync (Argo CD semantics)", o)
	}

	// With prune off nothing is deleted, and the app says what needs pruning.
	ns2, agentNS2 := testNamespaces(t)
	e2 := startEngine(t, agentNS2)
	accept(t, e2, bundle(t, "cfg", ns2, auto(false, false), nil, configMap("a", nil), configMap("b", nil)))
	waitStatus(t, e2, "cfg", 20*time.Second, synced)
	next2 := bundle(t, "cfg", ns2, auto(false, false), nil, configMap("a", nil))
	accept(t, e2, next2)
	st = waitStatus(t, e2, "cfg", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetDigest() == next2.GetDigest() && s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_SUCCEEDED
	})
	if _, ok := get(t, gvrConfigMap, ns2, "b"); !ok {
		t.Error("configmap b deleted although prune is off")
	}
	if st.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC || objectStatus(st, "ConfigMap", "b") == nil {
		t.Errorf("status = %v, want OutOfSync listing b", st)
	}
	// A SYNC command with prune deletes it.
	if res := e2.Do(context.Background(), &apiv1alpha1.Command{Id: "p", Type: apiv1alpha1.Command_TYPE_SYNC, App: "cfg", Prune: true}); !res.GetOk() {
		t.Fatalf("sync with prune: %v", res)
	}
	if _, ok := get(t, gvrConfigMap, ns2, "b"); ok {
		t.Error("configmap b still exists after SYNC with prune")
	}
	waitStatus(t, e2, "cfg", 10*time.Second, synced)
}

func TestAppRemoval(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "pruned", ns, auto(true, true), nil, configMap("p1", nil)),
		bundle(t, "kept", ns, auto(true, false), nil, configMap("k1", nil)))
	waitStatus(t, e, "pruned", 20*time.Second, synced)
	waitStatus(t, e, "kept", 20*time.Second, synced)

	if err := e.Accept(context.Background(), nil, []string{"pruned", "kept"}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "pruned", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return s.GetRemoved() })
	waitStatus(t, e, "kept", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return s.GetRemoved() })
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		_, ok := get(t, gvrConfigMap, ns, "p1")
		return !ok, "p1 still exists"
	})
	if _, ok := get(t, gvrConfigMap, ns, "k1"); !ok {
		t.Error("k1 of an app without prune was deleted")
	}
	if h := e.Held(); len(h) != 0 {
		t.Errorf("Held() = %v after removal", h)
	}
	// Nothing is left in the agent namespace.
	e2 := startEngine(t, agentNS)
	if h := e2.Held(); len(h) != 0 {
		t.Errorf("restarted Held() = %v, want empty", h)
	}
}

func TestTwoAppsDoNotFightOverOneObject(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "first", ns, auto(true, true), nil, configMap("shared", map[string]any{"by": "first"})))
	waitStatus(t, e, "first", 20*time.Second, synced)
	accept(t, e, bundle(t, "second", ns, auto(true, true), nil, configMap("shared", map[string]any{"by": "second"})))
	st := waitStatus(t, e, "second", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	if !strings.Contains(st.GetMessage(), "managed by another app: first") {
		t.Errorf("message = %q", st.GetMessage())
	}
	cm, _ := get(t, gvrConfigMap, ns, "shared")
	if by, _, _ := unstructured.NestedString(cm.Object, "data", "by"); by != "first" {
		t.Errorf("data.by = %q, want first", by)
	}
	if !apply.OwnedBy("first", cm) {
		t.Errorf("tracking id = %q", cm.GetAnnotations()[manifest.TrackingAnnotation])
	}
}
