//go:build !unit

package engine

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// TestWaveWaitsForRealDeployment runs on a whole process cluster
// (controller-manager, scheduler and a kwok node), where the Deployment
// really becomes Available, and checks from resourceVersions that the next
// wave was written only after that.
func TestWaveWaitsForRealDeployment(t *testing.T) {
	bin, err := testenv.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	c := cluster.Start(t, &cluster.ProcessProvider{BinDir: bin, Full: true}, "agent-waves")
	cfg := c.RESTConfig()
	cdyn := dynamic.NewForConfigOrDie(cfg)
	ctx := t.Context()
	if _, err := cdyn.Resource(gvrNamespace).Create(ctx, testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "flotilla-system"}}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Record the resourceVersion at which the Deployment became Available.
	w, err := cdyn.Resource(gvrDeploy).Namespace("shop").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	availableAt := make(chan uint64, 1)
	go func() {
		for ev := range w.ResultChan() {
			o, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			avail, _, _ := unstructured.NestedInt64(o.Object, "status", "availableReplicas")
			if avail == 2 {
				rv, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
				availableAt <- rv
				return
			}
		}
	}()

	e, err := New(cfg, Options{Cluster: "agent-waves"}, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	after := configMap("after-db", map[string]any{"x": "1"})
	after.SetAnnotations(map[string]string{manifest.SyncWaveAnnotation: "1"})
	accept(t, e, bundle(t, "shop", "shop", auto(true, true, "CreateNamespace=true"), nil, deployment("db", 2, nil), after))
	st := waitStatus(t, e, "shop", 2*time.Minute, synced)
	if st.GetHealth() != apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY {
		t.Errorf("health = %v, want Healthy", st.GetHealth())
	}
	var availRV uint64
	select {
	case availRV = <-availableAt:
	case <-time.After(10 * time.Second):
		t.Fatal("never saw the deployment Available")
	}
	cm, err := cdyn.Resource(gvrConfigMap).Namespace("shop").Get(ctx, "after-db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cmRV, _ := strconv.ParseUint(cm.GetResourceVersion(), 10, 64); cmRV <= availRV {
		t.Errorf("wave 1 written at resourceVersion %d, before the Deployment was Available at %d", cmRV, availRV)
	}
}
