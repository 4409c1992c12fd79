//go:build !unit

package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

var gvrPod = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// hookPod is a Pod hook. This API server runs no kubelet: the test ends a
// hook by setting its phase, as a kubelet would.
func hookPod(name, generateName string, ann map[string]string) *unstructured.Unstructured {
	md := map[string]any{}
	if name != "" {
		md["name"] = name
	}
	if generateName != "" {
		md["generateName"] = generateName
	}
	o := testenv.Obj(map[string]any{
		"apiVersion": "v1", "kind": "Pod", "metadata": md,
		"spec": map[string]any{"restartPolicy": "Never", "containers": []any{map[string]any{"name": "run", "image": "busybox:1.36"}}},
	})
	o.SetAnnotations(ann)
	return o
}

// podsNamed returns the live Pods of ns whose name starts with prefix.
func podsNamed(t testing.TB, ns, prefix string) []unstructured.Unstructured {
	t.Helper()
	l, err := dyn.Resource(gvrPod).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []unstructured.Unstructured
	for _, p := range l.Items {
		if strings.HasPrefix(p.GetName(), prefix) && p.GetDeletionTimestamp() == nil {
			out = append(out, p)
		}
	}
	return out
}

// waitPod waits until exactly one Pod named with prefix exists, other than
// the uids in not, and returns it.
func waitPod(t testing.TB, ns, prefix string, not ...string) unstructured.Unstructured {
	t.Helper()
	var found unstructured.Unstructured
	testenv.Eventually(t, 20*time.Second, func(context.Context) (bool, string) {
		var fresh []unstructured.Unstructured
	pods:
		for _, p := range podsNamed(t, ns, prefix) {
			for _, u := range not {
				if string(p.GetUID()) == u {
					continue pods
				}
			}
			fresh = append(fresh, p)
		}
		if len(fresh) == 1 {
			found = fresh[0]
			return true, ""
		}
		return false, fmt.Sprintf("%d new pods named %s*", len(fresh), prefix)
	})
	return found
}

// endPod sets a Pod's phase, as a kubelet does when its containers exit.
func endPod(t testing.TB, ns, name, phase string) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"status":{"phase":%q,"message":"exited"}}`, phase)
	if _, err := dyn.Resource(gvrPod).Namespace(ns).Patch(context.Background(), name, "application/merge-patch+json", patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("set phase of pod %s/%s: %v", ns, name, err)
	}
}

func hookResults(s *apiv1alpha1.AppStatus) []string {
	var out []string
	for _, h := range s.GetLastOperation().GetHooks() {
		out = append(out, fmt.Sprintf("%s %s %s %s deleted=%v", h.GetPhase(), h.GetKind(), h.GetHook(), h.GetStatus(), h.GetDeleted()))
	}
	return out
}

// TestHookPhasesInOrder: a PreSync hook (generateName, HookSucceeded) runs
// before any Sync-phase object exists, the PostSync hook is created only
// after every object is applied and Healthy, the operation reports each
// hook, and hooks are neither part of the app's objects nor drift. A
// self-heal runs no hook; a new bundle runs them again, and the named
// PostSync hook (BeforeHookCreation by default) is replaced, not patched.
func TestHookPhasesInOrder(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	pre := map[string]string{manifest.HookAnnotation: "PreSync", manifest.HookDeletePolicyAnnotation: "HookSucceeded"}
	post := map[string]string{manifest.HookAnnotation: "PostSync"}
	objs := func(v string) []*unstructured.Unstructured {
		return []*unstructured.Unstructured{
			hookPod("", "migrate-", pre),
			configMap("app", map[string]any{"v": v}),
			hookPod("smoke", "", post),
		}
	}
	accept(t, e, bundle(t, "hooked", ns, auto(true, true), nil, objs("1")...))

	migrate := waitPod(t, ns, "migrate-")
	// The operation waits for the PreSync hook: nothing of the Sync phase
	// or later exists while it runs.
	if _, ok := get(t, gvrConfigMap, ns, "app"); ok {
		t.Fatal("ConfigMap app (Sync phase) exists while the PreSync hook runs")
	}
	if _, ok := get(t, gvrPod, ns, "smoke"); ok {
		t.Fatal("PostSync hook exists while the PreSync hook runs")
	}
	if migrate.GetAnnotations()[manifest.TrackingAnnotation] != "" {
		t.Errorf("hook carries the tracking annotation: %v", migrate.GetAnnotations())
	}
	endPod(t, ns, migrate.GetName(), "Succeeded")

	smoke := waitPod(t, ns, "smoke")
	cm, ok := get(t, gvrConfigMap, ns, "app")
	if !ok {
		t.Fatal("PostSync hook created before ConfigMap app (Sync phase)")
	}
	if smokeAt, cmAt := smoke.GetCreationTimestamp(), cm.GetCreationTimestamp(); smokeAt.Before(&cmAt) {
		t.Errorf("PostSync hook created at %s, before the Sync phase's ConfigMap at %s", smoke.GetCreationTimestamp(), cm.GetCreationTimestamp())
	}
	st := statusOf(e, "hooked")
	if st.GetLastOperation().GetPhase() != apiv1alpha1.Operation_PHASE_RUNNING {
		t.Fatalf("operation = %v while the PostSync hook runs, want Running", st.GetLastOperation())
	}
	endPod(t, ns, "smoke", "Succeeded")
	st = waitStatus(t, e, "hooked", 20*time.Second, synced)

	want := []string{
		"PreSync Pod migrate- STATUS_SUCCEEDED deleted=true",
		"PostSync Pod smoke STATUS_SUCCEEDED deleted=false",
	}
	if got := hookResults(st); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hook results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := st.GetLastOperation().GetHooks()[0].GetName(); n != migrate.GetName() {
		t.Errorf("PreSync hook reported as %q, created as %q", n, migrate.GetName())
	}
	for _, o := range st.GetObjects() {
		if o.GetKind() == "Pod" {
			t.Errorf("hook %s listed among the app's objects: %v", o.GetName(), o)
		}
	}
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		return len(podsNamed(t, ns, "migrate-")) == 0, "succeeded PreSync hook (HookSucceeded) not deleted"
	})

	// A self-heal is no sync operation: no hook runs.
	opStart := st.GetLastOperation().GetStartedAt().AsTime()
	if _, err := dyn.Resource(gvrConfigMap).Namespace(ns).Patch(context.Background(), "app", "application/merge-patch+json", []byte(`{"data":{"v":"changed"}}`), metaPatch("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		o, _ := get(t, gvrConfigMap, ns, "app")
		v, _, _ := unstructured.NestedString(o.Object, "data", "v")
		return v == "1", "ConfigMap app not healed: v=" + v
	})
	st = waitStatus(t, e, "hooked", 10*time.Second, synced)
	if !st.GetLastOperation().GetStartedAt().AsTime().Equal(opStart) {
		t.Errorf("a self-heal started an operation: %v", st.GetLastOperation())
	}
	if n := len(podsNamed(t, ns, "migrate-")); n != 0 {
		t.Errorf("a self-heal ran the PreSync hook again (%d pods)", n)
	}

	// A new bundle runs the hooks again; the named PostSync hook is
	// deleted and created anew (BeforeHookCreation), not patched.
	accept(t, e, bundle(t, "hooked", ns, auto(true, true), nil, objs("2")...))
	migrate2 := waitPod(t, ns, "migrate-", string(migrate.GetUID()))
	if migrate2.GetName() == migrate.GetName() {
		t.Errorf("second PreSync hook has the first one's name %s", migrate.GetName())
	}
	endPod(t, ns, migrate2.GetName(), "Succeeded")
	smoke2 := waitPod(t, ns, "smoke", string(smoke.GetUID()))
	endPod(t, ns, "smoke", "Succeeded")
	st = waitStatus(t, e, "hooked", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return synced(s) && s.GetLastOperation().GetDigest() != st.GetLastOperation().GetDigest()
	})
	if len(st.GetLastOperation().GetHooks()) != 2 {
		t.Errorf("second operation hooks: %v", hookResults(st))
	}
	if smoke2.GetUID() == smoke.GetUID() {
		t.Error("PostSync hook not re-created")
	}

	// Removing the app with prune deletes its objects and the hook
	// instances BeforeHookCreation left.
	if err := e.Accept(context.Background(), nil, []string{"hooked"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func(context.Context) (bool, string) {
		_, cm := get(t, gvrConfigMap, ns, "app")
		return !cm && len(podsNamed(t, ns, "smoke")) == 0, fmt.Sprintf("after removal: ConfigMap app exists %v, smoke pods %d", cm, len(podsNamed(t, ns, "smoke")))
	})
}

// TestFailedPreSyncHook: a failed PreSync hook fails the operation before
// any Sync-phase object is applied, and the SyncFail hook runs; HookFailed
// deletes the failed hook. A restarted agent does not run the hooks of a
// bundle whose operation succeeded.
func TestFailedPreSyncHook(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e, stop := runEngine(t, agentNS)
	policy := &apiv1alpha1.SyncPolicy{Automated: true, SelfHeal: true, Prune: true, Retry: &apiv1alpha1.Retry{Limit: 0}}
	objs := []*unstructured.Unstructured{
		hookPod("", "migrate-", map[string]string{manifest.HookAnnotation: "PreSync", manifest.HookDeletePolicyAnnotation: "HookFailed"}),
		configMap("app", map[string]any{"v": "1"}),
		hookPod("", "cleanup-", map[string]string{manifest.HookAnnotation: "SyncFail"}),
	}
	accept(t, e, bundle(t, "failing", ns, policy, nil, objs...))
	migrate := waitPod(t, ns, "migrate-")
	endPod(t, ns, migrate.GetName(), "Failed")
	cleanup := waitPod(t, ns, "cleanup-")
	if _, ok := get(t, gvrConfigMap, ns, "app"); ok {
		t.Error("ConfigMap app applied although the PreSync hook failed")
	}
	endPod(t, ns, cleanup.GetName(), "Succeeded")
	st := waitStatus(t, e, "failing", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	if msg := st.GetLastOperation().GetMessage(); !strings.Contains(msg, "PreSync hooks") || !strings.Contains(msg, migrate.GetName()) {
		t.Errorf("operation message %q does not name the failed PreSync hook", msg)
	}
	want := []string{"PreSync Pod migrate- STATUS_FAILED deleted=true", "SyncFail Pod cleanup- STATUS_SUCCEEDED deleted=false"}
	if got := hookResults(st); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hook results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		return len(podsNamed(t, ns, "migrate-")) == 0, "failed PreSync hook (HookFailed) not deleted"
	})
	if f, s := testutil.ToFloat64(e.metrics.hooks.WithLabelValues("PreSync", resultFailed)), testutil.ToFloat64(e.metrics.hooks.WithLabelValues("SyncFail", resultSucceeded)); f != 1 || s != 1 {
		t.Errorf("flotilla_agent_hook_runs_total: PreSync failed %v, SyncFail succeeded %v; want 1 and 1", f, s)
	}

	// A bundle whose hooks succeed, then a restart: the restarted agent
	// syncs again but runs no hook.
	ok := []*unstructured.Unstructured{
		hookPod("", "migrate-", map[string]string{manifest.HookAnnotation: "PreSync", manifest.HookDeletePolicyAnnotation: "HookSucceeded"}),
		configMap("app", map[string]any{"v": "1"}),
	}
	accept(t, e, bundle(t, "failing", ns, auto(true, true), nil, ok...))
	m2 := waitPod(t, ns, "migrate-")
	endPod(t, ns, m2.GetName(), "Succeeded")
	waitStatus(t, e, "failing", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && len(s.GetLastOperation().GetHooks()) == 1 })
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		return len(podsNamed(t, ns, "migrate-")) == 0, "PreSync hook not deleted"
	})
	stop()
	e2 := startEngine(t, agentNS)
	st = waitStatus(t, e2, "failing", 20*time.Second, synced)
	if h := st.GetLastOperation().GetHooks(); len(h) != 0 {
		t.Errorf("restarted agent ran hooks again: %v", hookResults(st))
	}
	if n := len(podsNamed(t, ns, "migrate-")); n != 0 {
		t.Errorf("restarted agent created %d PreSync hook pods", n)
	}
	// A manual sync runs them again.
	done := make(chan *apiv1alpha1.CommandResult, 1)
	go func() {
		done <- e2.Do(context.Background(), &apiv1alpha1.Command{Id: "1", Type: apiv1alpha1.Command_TYPE_SYNC, App: "failing", InitiatedBy: "admin"})
	}()
	m3 := waitPod(t, ns, "migrate-")
	endPod(t, ns, m3.GetName(), "Succeeded")
	if res := <-done; !res.GetOk() {
		t.Fatalf("manual sync: %v", res)
	}
}

// TestInvalidHookFailsBeforeWriting: a hook the API server refuses (here a
// PostSync Pod without containers) fails the operation before anything is
// written: no PreSync hook runs, no object is applied.
func TestInvalidHookFailsBeforeWriting(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	bad := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "broken"}, "spec": map[string]any{"containers": []any{}}})
	bad.SetAnnotations(map[string]string{manifest.HookAnnotation: "PostSync"})
	policy := &apiv1alpha1.SyncPolicy{Automated: true, Prune: true, Retry: &apiv1alpha1.Retry{Limit: 0}}
	accept(t, e, bundle(t, "invalid", ns, policy, nil,
		hookPod("", "migrate-", map[string]string{manifest.HookAnnotation: "PreSync"}),
		configMap("app", map[string]any{"v": "1"}),
		bad,
	))
	st := waitStatus(t, e, "invalid", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	if msg := st.GetLastOperation().GetMessage(); !strings.Contains(msg, "nothing was applied") || !strings.Contains(msg, "broken") {
		t.Errorf("operation message %q does not name the refused hook", msg)
	}
	if _, ok := get(t, gvrConfigMap, ns, "app"); ok {
		t.Error("ConfigMap app applied although a hook was refused")
	}
	if n := len(podsNamed(t, ns, "migrate-")); n != 0 {
		t.Errorf("PreSync hook created although a hook was refused (%d pods)", n)
	}
}

// TestSyncHookWaitsInItsWave: a Sync hook runs with the Sync phase's
// objects of its wave, after the objects of earlier waves, and the next
// wave starts only once it completed.
func TestSyncHookWaitsInItsWave(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	first := configMap("first", map[string]any{"k": "v"})
	last := configMap("last", map[string]any{"k": "v"})
	last.SetAnnotations(map[string]string{manifest.ArgoSyncWaveAnnotation: "2"})
	accept(t, e, bundle(t, "waves", ns, auto(true, true), nil,
		first,
		hookPod("", "during-", map[string]string{manifest.HookAnnotation: "Sync", manifest.ArgoSyncWaveAnnotation: "1"}),
		last,
	))
	during := waitPod(t, ns, "during-")
	if _, ok := get(t, gvrConfigMap, ns, "first"); !ok {
		t.Error("the wave 1 Sync hook started before wave 0 was applied")
	}
	if _, ok := get(t, gvrConfigMap, ns, "last"); ok {
		t.Fatal("wave 2 applied while the wave 1 Sync hook runs")
	}
	endPod(t, ns, during.GetName(), "Succeeded")
	st := waitStatus(t, e, "waves", 20*time.Second, synced)
	if _, ok := get(t, gvrConfigMap, ns, "last"); !ok {
		t.Error("wave 2 not applied after the Sync hook completed")
	}
	if got := hookResults(st); len(got) != 1 || got[0] != "Sync Pod during- STATUS_SUCCEEDED deleted=false" {
		t.Errorf("hook results: %q", got)
	}
}

// TestObjectBecomesHook: an object the app applied as an ordinary object
// and that becomes a hook in a later bundle (a repo moved from a renderer
// that applied hooks as plain objects) is replaced by the hook run, not
// patched, and is not pruned as a left-over afterwards.
func TestObjectBecomesHook(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "moved", ns, auto(true, true), nil, hookPod("upgrade", "", nil), configMap("app", map[string]any{"v": "1"})))
	waitStatus(t, e, "moved", 20*time.Second, synced)
	plain, ok := get(t, gvrPod, ns, "upgrade")
	if !ok {
		t.Fatal("plain Pod upgrade not applied")
	}
	accept(t, e, bundle(t, "moved", ns, auto(true, true), nil,
		hookPod("upgrade", "", map[string]string{manifest.HookAnnotation: "PreSync"}), configMap("app", map[string]any{"v": "2"})))
	hook := waitPod(t, ns, "upgrade", string(plain.GetUID()))
	endPod(t, ns, "upgrade", "Succeeded")
	st := waitStatus(t, e, "moved", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return synced(s) && len(s.GetLastOperation().GetHooks()) == 1
	})
	live, ok := get(t, gvrPod, ns, "upgrade")
	if !ok || live.GetUID() != hook.GetUID() {
		t.Fatalf("hook Pod upgrade pruned or replaced after its run (found %v)", ok)
	}
	if live.GetAnnotations()[manifest.TrackingAnnotation] != "" {
		t.Errorf("hook Pod keeps the tracking annotation: %v", live.GetAnnotations())
	}
	if o := objectStatus(st, "Pod", "upgrade"); o != nil {
		t.Errorf("hook listed among the app's objects: %v", o)
	}
}

// TestRestartAdoptsRunningHook: an agent restarted while a PreSync hook
// runs waits for that run instead of starting the hook again.
func TestRestartAdoptsRunningHook(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e, stop := runEngine(t, agentNS)
	accept(t, e, bundle(t, "restarted", ns, auto(true, true), nil,
		hookPod("", "migrate-", map[string]string{manifest.HookAnnotation: "PreSync", manifest.HookDeletePolicyAnnotation: "HookSucceeded"}),
		configMap("app", map[string]any{"v": "1"}),
	))
	migrate := waitPod(t, ns, "migrate-")
	stop()
	e2 := startEngine(t, agentNS)
	waitStatus(t, e2, "restarted", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		h := s.GetLastOperation().GetHooks()
		return len(h) == 1 && h[0].GetName() == migrate.GetName()
	})
	if n := len(podsNamed(t, ns, "migrate-")); n != 1 {
		t.Fatalf("%d PreSync hook pods after the restart, want the one still running", n)
	}
	endPod(t, ns, migrate.GetName(), "Succeeded")
	waitStatus(t, e2, "restarted", 20*time.Second, synced)
	if _, ok := get(t, gvrConfigMap, ns, "app"); !ok {
		t.Error("ConfigMap app not applied after the adopted hook succeeded")
	}
}

// TestNamedHookDoesNotTakeOverAnotherAppsObject: a named hook whose name is
// an object of another app fails, naming that app, and leaves the object
// alone.
func TestNamedHookDoesNotTakeOverAnotherAppsObject(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "owner", ns, auto(true, true), nil, configMap("shared", map[string]any{"by": "owner"})))
	waitStatus(t, e, "owner", 20*time.Second, synced)
	hook := configMap("shared", map[string]any{"by": "hook"})
	hook.SetAnnotations(map[string]string{manifest.HookAnnotation: "PreSync"})
	policy := &apiv1alpha1.SyncPolicy{Automated: true, Retry: &apiv1alpha1.Retry{Limit: 0}}
	accept(t, e, bundle(t, "intruder", ns, policy, nil, hook, configMap("own", map[string]any{"k": "v"})))
	st := waitStatus(t, e, "intruder", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	})
	if msg := st.GetLastOperation().GetMessage(); !strings.Contains(msg, "managed by another app: owner") {
		t.Errorf("operation message %q does not name the owner", msg)
	}
	cm, _ := get(t, gvrConfigMap, ns, "shared")
	if by, _, _ := unstructured.NestedString(cm.Object, "data", "by"); by != "owner" {
		t.Errorf("the other app's ConfigMap was overwritten by the hook: by=%s", by)
	}
}
