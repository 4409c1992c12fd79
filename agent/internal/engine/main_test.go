//go:build !unit

package engine

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// The integration tests share one control plane; each test works in its
// own namespaces. Tests that write only namespaced objects in their own
// namespaces and wait on conditions (not on paced real time) run in
// parallel; those that touch cluster-scoped objects (CRDs, cluster-wide
// listings), the metrics registry or memory, or pace self-heal and retries
// on the clock stay serial.
var (
	testEnv *testenv.Env
	restCfg *rest.Config
	dyn     dynamic.Interface
	nsSeq   atomic.Int64
)

func TestMain(m *testing.M) {
	if testenv.UnitOnly() {
		os.Exit(m.Run())
	}
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine integration tests:", err)
		os.Exit(1)
	}
	testEnv, restCfg = env, env.Config
	dyn = dynamic.NewForConfigOrDie(restCfg)
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	os.Exit(code)
}

var (
	gvrDeploy    = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrService   = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	gvrConfigMap = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrNamespace = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// needCluster skips t when no control plane runs (-short).
func needCluster(t testing.TB) {
	t.Helper()
	testenv.Need(t, restCfg != nil)
}

// testNamespaces creates a destination namespace and an agent namespace.
func testNamespaces(t testing.TB) (dest, agent string) {
	needCluster(t)
	t.Helper()
	n := nsSeq.Add(1)
	base := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(base) > 40 {
		base = base[:40]
	}
	dest, agent = fmt.Sprintf("%s-%d", base, n), fmt.Sprintf("agent-%s-%d", base, n)
	for _, ns := range []string{dest, agent} {
		mustCreate(t, gvrNamespace, "", testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}))
	}
	return dest, agent
}

func mustCreate(t testing.TB, gvr schema.GroupVersionResource, ns string, obj *unstructured.Unstructured) *unstructured.Unstructured {
	needCluster(t)
	t.Helper()
	out, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s %s: %v", gvr.Resource, obj.GetName(), err)
	}
	return out
}

// startEngine runs an engine until the test ends.
func startEngine(t testing.TB, agentNS string) *Engine {
	t.Helper()
	e, _ := runEngine(t, agentNS)
	return e
}

// runEngine runs an engine until stop is called or the test ends.
func runEngine(t testing.TB, agentNS string) (*Engine, func()) {
	t.Helper()
	return runEngineWith(t, restCfg, Options{Namespace: agentNS})
}

// runEngineWith runs an engine on cfg until stop is called or the test ends.
func runEngineWith(t testing.TB, cfg *rest.Config, opts Options) (*Engine, func()) {
	needCluster(t)
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: os.Stderr})
	if testing.Verbose() {
		log.SetLevel(hclog.Info)
	}
	opts.Cluster = "test"
	e, err := New(cfg, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return e, stop
}

func bundle(t testing.TB, app, ns string, policy *apiv1alpha1.SyncPolicy, ignore []*apiv1alpha1.IgnoreDifference, objs ...*unstructured.Unstructured) *apiv1alpha1.Bundle {
	t.Helper()
	cp := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		cp[i] = o.DeepCopy()
	}
	b, err := manifest.NewBundle(app, ns, "rev1", "apps/"+app, cp, policy, ignore)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func auto(selfHeal, prune bool, opts ...string) *apiv1alpha1.SyncPolicy {
	return &apiv1alpha1.SyncPolicy{Automated: true, SelfHeal: selfHeal, Prune: prune, SyncOptions: opts}
}

func accept(t testing.TB, e *Engine, bundles ...*apiv1alpha1.Bundle) {
	t.Helper()
	if err := e.Accept(context.Background(), bundles, nil); err != nil {
		t.Fatal(err)
	}
}

func deployment(name string, replicas int64, ann map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name}
	if ann != nil {
		md["annotations"] = ann
	}
	return testenv.Obj(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md,
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "web", "image": "nginx:1.27",
					"ports": []any{map[string]any{"containerPort": int64(80)}},
				}}},
			},
		},
	})
}

func service(name string) *unstructured.Unstructured {
	return testenv.Obj(map[string]any{
		"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"selector": map[string]any{"app": name}, "ports": []any{map[string]any{"port": int64(80)}}},
	})
}

func configMap(name string, data map[string]any) *unstructured.Unstructured {
	return testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}, "data": data})
}

func get(t testing.TB, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, bool) {
	needCluster(t)
	t.Helper()
	o, err := dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return o, true
}

func replicas(t testing.TB, ns, name string) int64 {
	t.Helper()
	o, ok := get(t, gvrDeploy, ns, name)
	if !ok {
		return -1
	}
	r, _, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
	return r
}

// scale sets a Deployment's replicas through the scale subresource, as
// kubectl scale does (another field manager takes the field).
func scale(t testing.TB, ns, name string, n int64) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	if _, err := dyn.Resource(gvrDeploy).Namespace(ns).Patch(context.Background(), name, "application/merge-patch+json", patch, metav1.PatchOptions{FieldManager: "kubectl-scale"}, "scale"); err != nil {
		t.Fatalf("scale %s/%s: %v", ns, name, err)
	}
}

func statusOf(e *Engine, app string) *apiv1alpha1.AppStatus {
	for _, s := range e.Statuses() {
		if s.GetApp() == app {
			return s
		}
	}
	return nil
}

// waitStatus waits until the app's status satisfies cond.
func waitStatus(t testing.TB, e *Engine, app string, timeout time.Duration, cond func(*apiv1alpha1.AppStatus) bool) *apiv1alpha1.AppStatus {
	t.Helper()
	var last *apiv1alpha1.AppStatus
	testenv.Eventually(t, timeout, func(context.Context) (bool, string) {
		last = statusOf(e, app)
		return last != nil && cond(last), fmt.Sprintf("status of %s: %v", app, last)
	})
	return last
}

func synced(s *apiv1alpha1.AppStatus) bool {
	return s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED &&
		s.GetLastOperation().GetPhase() == apiv1alpha1.Operation_PHASE_SUCCEEDED
}

func objectStatus(s *apiv1alpha1.AppStatus, kind, name string) *apiv1alpha1.ObjectStatus {
	for _, o := range s.GetObjects() {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func nestedInt(obj map[string]any, fields ...string) (int64, bool, error) {
	return unstructured.NestedInt64(obj, fields...)
}

func metaPatch(manager string) metav1.PatchOptions { return metav1.PatchOptions{FieldManager: manager} }
