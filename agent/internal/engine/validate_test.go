//go:build !unit

package engine

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// oversized is a ConfigMap the API server refuses: more than 1 MiB of data.
func oversized(name string) *unstructured.Unstructured {
	return configMap(name, map[string]any{"blob": strings.Repeat("x", 1100<<10)})
}

func failedOn(digest string) func(*apiv1alpha1.AppStatus) bool {
	return func(s *apiv1alpha1.AppStatus) bool {
		return s.GetDigest() == digest && s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_FAILED
	}
}

func cmData(t testing.TB, ns, name, key string) string {
	t.Helper()
	cm, ok := get(t, gvrConfigMap, ns, name)
	if !ok {
		return "<missing>"
	}
	v, _, _ := unstructured.NestedString(cm.Object, "data", key)
	return v
}

// A bundle the API server refuses in part is applied not at all: no object
// changes, none is created, nothing is pruned, the error names every
// refused object, and drift is reported but not healed until a good bundle
// comes.
func TestRefusedObjectAppliesNothing(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	good := bundle(t, "app", ns, auto(true, true), nil, configMap("conf", map[string]any{"release": "good"}), service("web"))
	accept(t, e, good)
	waitStatus(t, e, "app", 20*time.Second, synced)

	badPort := service("bad-port")
	_ = unstructured.SetNestedSlice(badPort.Object, []any{map[string]any{"port": int64(99999)}}, "spec", "ports")
	bad := bundle(t, "app", ns, auto(true, true), nil,
		configMap("conf", map[string]any{"release": "bad"}), configMap("new", nil), oversized("huge"), badPort)
	accept(t, e, bad)
	st := waitStatus(t, e, "app", 20*time.Second, failedOn(bad.GetDigest()))
	for _, want := range []string{"nothing was applied", "ConfigMap " + ns + "/huge", "Too long", "Service " + ns + "/bad-port", "spec.ports[0].port"} {
		if !strings.Contains(st.GetMessage(), want) {
			t.Errorf("message does not mention %q: %s", want, st.GetMessage())
		}
	}
	if o := objectStatus(st, "ConfigMap", "huge"); o.GetSync() != apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC || !strings.Contains(o.GetMessage(), "Too long") {
		t.Errorf("status of ConfigMap huge = %v", o)
	}
	if got := cmData(t, ns, "conf", "release"); got != "good" {
		t.Errorf("conf release = %q, want the last good value kept", got)
	}
	if _, ok := get(t, gvrConfigMap, ns, "new"); ok {
		t.Error("ConfigMap new of the refused bundle was created")
	}
	if _, ok := get(t, gvrService, ns, "web"); !ok {
		t.Error("Service web pruned by the refused bundle")
	}

	// Drift on an object while the bundle is refused is reported, not
	// healed to the refused bundle's value.
	if _, err := dyn.Resource(gvrConfigMap).Namespace(ns).Patch(context.Background(), "conf", "application/merge-patch+json", []byte(`{"data":{"release":"by-hand"}}`), metaPatch("someone")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "app", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return strings.Contains(objectStatus(s, "ConfigMap", "conf").GetDiff(), "by-hand")
	})
	if got := cmData(t, ns, "conf", "release"); got != "by-hand" {
		t.Errorf("conf release = %q: drift was healed to a refused bundle", got)
	}

	fixed := bundle(t, "app", ns, auto(true, true), nil, configMap("conf", map[string]any{"release": "fixed"}), configMap("new", nil))
	accept(t, e, fixed)
	waitStatus(t, e, "app", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == fixed.GetDigest() })
	if got := cmData(t, ns, "conf", "release"); got != "fixed" {
		t.Errorf("conf release = %q after the fixed bundle", got)
	}
	if _, ok := get(t, gvrService, ns, "web"); ok {
		t.Error("Service web not pruned by the fixed bundle")
	}
}

// Objects in a namespace the bundle creates, and custom resources of a CRD
// the bundle defines, are dry-run in their step: a good bundle syncs, and a
// refused object there stops its step before it writes anything.
func TestDeferredDryRun(t *testing.T) {
	_, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	newNS := "fresh-" + agentNS
	nsObj := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": newNS}})
	group := "gadgets-" + agentNS + ".example.com"
	def := testenv.Obj(crd(group, "Gadget", "gadgets"))
	cr := testenv.Obj(map[string]any{"apiVersion": group + "/v1", "kind": "Gadget", "metadata": map[string]any{"name": "g1"}, "spec": map[string]any{"color": "red"}})

	// CreateNamespace=true with a new destination, plus a bundle Namespace.
	created := "created-" + agentNS
	accept(t, e, bundle(t, "dest", created, auto(true, true, "CreateNamespace=true"), nil, configMap("c", map[string]any{"k": "v"})))
	accept(t, e, bundle(t, "fresh", newNS, auto(true, true), nil, nsObj, def, cr, configMap("c", map[string]any{"k": "v"})))
	waitStatus(t, e, "dest", 30*time.Second, synced)
	waitStatus(t, e, "fresh", 30*time.Second, synced)
	if got := cmData(t, created, "c", "k"); got != "v" {
		t.Errorf("configmap in the CreateNamespace destination: k = %q", got)
	}

	// A refused object in a namespace created by the same bundle: the
	// Namespace step has run, the namespaced step writes nothing, whether
	// the refused object is the step's probe (first: applied without a
	// dry-run, alone, before the others) or not.
	for i, refusedFirst := range []bool{false, true} {
		later := fmt.Sprintf("later%d-%s", i, agentNS)
		laterNS := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": later}})
		objs := []*unstructured.Unstructured{laterNS, configMap("aaa", nil), oversized("zzz")}
		ok, huge := "aaa", "zzz"
		if refusedFirst {
			objs = []*unstructured.Unstructured{laterNS, oversized("aaa"), configMap("zzz", nil)}
			ok, huge = "zzz", "aaa"
		}
		app := fmt.Sprintf("later%d", i)
		bad := bundle(t, app, later, auto(true, true), nil, objs...)
		accept(t, e, bad)
		st := waitStatus(t, e, app, 30*time.Second, failedOn(bad.GetDigest()))
		for _, want := range []string{"namespaced", "nothing of this step was applied", "ConfigMap " + later + "/" + huge, "Too long"} {
			if !strings.Contains(st.GetMessage(), want) {
				t.Errorf("refused first %v: message does not mention %q: %s", refusedFirst, want, st.GetMessage())
			}
		}
		if strings.Contains(st.GetMessage(), "ConfigMap "+later+"/"+ok) {
			t.Errorf("refused first %v: message names the good ConfigMap: %s", refusedFirst, st.GetMessage())
		}
		if _, found := get(t, gvrConfigMap, later, ok); found {
			t.Errorf("refused first %v: ConfigMap %s written though its step failed", refusedFirst, ok)
		}
	}
}

// requestCounter counts server-side applies (PATCH with the apply content
// type) to one namespace, dry-runs apart.
type requestCounter struct {
	ns string
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/namespaces/"+c.ns+"/") {
			kind := "apply"
			if r.URL.Query().Get("dryRun") != "" {
				kind = "dry-run"
			}
			c.mu.Lock()
			c.n[kind]++
			c.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = map[string]int{}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The dry-run of a sync is the one the apply needs anyway: new objects cost
// one dry-run and one apply each, an unchanged bundle nothing, a live object
// changed outside the fields the bundle sets one dry-run and no write.
func TestDryRunCosts(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	counter := &requestCounter{ns: ns, n: map[string]int{}}
	cfg := rest.CopyConfig(restCfg)
	cfg.Wrap(counter.wrap)
	e, _ := runEngineWith(t, cfg, Options{Namespace: agentNS})
	var objs []*unstructured.Unstructured
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		objs = append(objs, configMap(n, map[string]any{"k": n}), service(n))
	}
	// Without selfHeal, so that every check of a watch event is a dry-run.
	accept(t, e, bundle(t, "cost", ns, auto(false, true), nil, objs...))
	waitStatus(t, e, "cost", 20*time.Second, synced)
	if diff := cmp.Diff(map[string]int{"dry-run": 10, "apply": 10}, counter.take()); diff != "" {
		t.Errorf("requests for 10 new objects (-want +got):\n%s", diff)
	}

	sync := func() {
		t.Helper()
		if res := e.Do(context.Background(), &apiv1alpha1.Command{Id: "s", Type: apiv1alpha1.Command_TYPE_SYNC, App: "cost"}); !res.GetOk() {
			t.Fatal(res)
		}
	}
	sync()
	if diff := cmp.Diff(map[string]int{}, counter.take()); diff != "" {
		t.Errorf("requests for a SYNC of the unchanged bundle (-want +got):\n%s", diff)
	}

	// Someone else adds a label the bundle does not set: not drift, but
	// the live fingerprint changed, so one dry-run (on the watch event or
	// in the sync, whichever comes first) finds it equal.
	if _, err := dyn.Resource(gvrConfigMap).Namespace(ns).Patch(context.Background(), "a", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"team":"x"}}}`), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		o, ok := e.cache.Get(gvrConfigMap, ns, "a")
		return ok && o.GetLabels()["team"] == "x", "label not in the watch cache"
	})
	sync()
	if diff := cmp.Diff(map[string]int{"dry-run": 1}, counter.take()); diff != "" {
		t.Errorf("requests after an unrelated label and a SYNC (-want +got):\n%s", diff)
	}
}
