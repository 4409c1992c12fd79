//go:build !unit

package engine

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func resourceVersions(t testing.TB, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if d, ok := get(t, gvrDeploy, ns, "web"); ok {
		out["deployment/web"] = d.GetResourceVersion()
	}
	if s, ok := get(t, gvrService, ns, "web"); ok {
		out["service/web"] = s.GetResourceVersion()
	}
	if c, ok := get(t, gvrConfigMap, ns, "conf"); ok {
		out["configmap/conf"] = c.GetResourceVersion()
	}
	return out
}

func TestRestartKeepsEnforcingAndPrunes(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e1, stop1 := runEngine(t, agentNS)
	first := bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil), service("web"), configMap("conf", map[string]any{"k": "v"}))
	accept(t, e1, first)
	waitStatus(t, e1, "web", 20*time.Second, synced)
	before := resourceVersions(t, ns)
	stop1()

	// A new agent on the same cluster, no hub: it holds what was accepted...
	e2 := startEngine(t, agentNS)
	if diff := cmp.Diff(map[string]string{"web": first.GetDigest()}, e2.Held()); diff != "" {
		t.Fatalf("Held() after restart (-want +got):\n%s", diff)
	}
	waitStatus(t, e2, "web", 20*time.Second, synced)
	// ...re-applying the unchanged bundle wrote nothing...
	if diff := cmp.Diff(before, resourceVersions(t, ns)); diff != "" {
		t.Fatalf("resourceVersions changed by the restarted agent (-before +after):\n%s", diff)
	}
	// ...it keeps self-healing...
	scale(t, ns, "web", 5)
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		return replicas(t, ns, "web") == 2, "replicas not reverted by the restarted agent"
	})
	// ...and prunes from the persisted inventory.
	next := bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil), configMap("conf", map[string]any{"k": "v"}))
	accept(t, e2, next)
	waitStatus(t, e2, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == next.GetDigest() })
	if _, ok := get(t, gvrService, ns, "web"); ok {
		t.Fatal("service web not pruned after restart")
	}
}

func TestUnchangedObjectsAreNotWritten(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	accept(t, e, bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil), service("web"), configMap("conf", map[string]any{"k": "v"})))
	waitStatus(t, e, "web", 20*time.Second, synced)
	before := resourceVersions(t, ns)

	// A new bundle changing one object writes that object only.
	next := bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil), service("web"), configMap("conf", map[string]any{"k": "v2"}))
	accept(t, e, next)
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == next.GetDigest() })
	after := resourceVersions(t, ns)
	if after["deployment/web"] != before["deployment/web"] || after["service/web"] != before["service/web"] {
		t.Errorf("unchanged objects were written: before %v after %v", before, after)
	}
	if after["configmap/conf"] == before["configmap/conf"] {
		t.Errorf("changed configmap was not written")
	}
	// A SYNC command of an unchanged bundle writes nothing.
	if res := e.Do(context.Background(), &apiv1alpha1.Command{Id: "s", Type: apiv1alpha1.Command_TYPE_SYNC, App: "web"}); !res.GetOk() {
		t.Fatal(res)
	}
	if diff := cmp.Diff(after, resourceVersions(t, ns)); diff != "" {
		t.Errorf("SYNC of an unchanged bundle wrote (-before +after):\n%s", diff)
	}
}
