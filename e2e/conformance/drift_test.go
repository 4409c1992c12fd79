//go:build !unit

package conformance

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// agentMetric reads one sample (without labels) from the agent's /metrics.
func agentMetric(ctx context.Context, s *Suite, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.Agent.MetricsURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no sample %s on the agent's /metrics", name)
}

// TestNoDriftUnderHPA: Argo CD users leave replicas out of a Deployment an
// HPA scales. The HPA controller scaling it (through the scale subresource,
// as kube-controller-manager does), and the Deployment controller rolling
// it out and updating its status, are no drift: the agent looks at every
// change and counts no drift event and no self-heal, and never puts the
// replicas back.
func TestNoDriftUnderHPA(t *testing.T) {
	c := NewCase(t, "drift-hpa")
	rev := c.Commit(map[string]string{"app/web.yaml": WebDeployment("", false)})
	c.Define(c.ArgoApplication("app", ""))
	c.WaitSynced(rev, true)
	ctx := t.Context()
	metric := func(name string) float64 {
		v, err := agentMetric(ctx, c.S, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	drift, heals := metric("flotilla_agent_drift_events_total"), metric("flotilla_agent_self_heal_total")
	for _, n := range []int32{3, 5, 2} {
		checks := metric("flotilla_agent_drift_checks_total")
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
		if _, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kube-controller-manager"}, "scale"); err != nil {
			t.Fatal(err)
		}
		c.Eventually(time.Minute, fmt.Sprintf("%d replicas available and looked at by the agent", n), func() error {
			d, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.AvailableReplicas != n || d.Status.ObservedGeneration != d.Generation {
				return fmt.Errorf("%d of %d replicas available", d.Status.AvailableReplicas, n)
			}
			if got := metric("flotilla_agent_drift_checks_total"); got <= checks {
				return fmt.Errorf("the agent has not looked at the change yet (%v checks)", got)
			}
			return nil
		})
	}
	d, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want the HPA's 2", *d.Spec.Replicas)
	}
	if got := metric("flotilla_agent_drift_events_total"); got != drift {
		t.Errorf("drift events went from %v to %v with no out-of-band change to a field the bundle sets", drift, got)
	}
	if got := metric("flotilla_agent_self_heal_total"); got != heals {
		t.Errorf("self-heals went from %v to %v", heals, got)
	}
}

// hpaManifest is an HPA on the web Deployment. Without a metrics API the
// real HPA controller (kube-controller-manager) still keeps the replicas
// within [min, max], which is enough to make it scale the Deployment.
func hpaManifest(min, max int) string {
	return fmt.Sprintf(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: %d
  maxReplicas: %d
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`, min, max)
}

// ObserveEnv names how long TestNoDriftUnderRealHPA keeps watching the
// counters after the HPA scaled (a Go duration, default 0). The issue asks
// for five minutes; `FLOTILLA_CONFORMANCE_OBSERVE=5m go test -run
// TestNoDriftUnderRealHPA ./e2e/conformance/` runs that observation. It is
// a length of observation, not a wait for a condition.
const ObserveEnv = "FLOTILLA_CONFORMANCE_OBSERVE"

// TestNoDriftUnderRealHPA: the app ships a Deployment without replicas and
// a real HorizontalPodAutoscaler; kube-controller-manager's HPA controller
// scales the Deployment to the HPA's minimum, and again when a commit raises
// it. No drift event and no self-heal is counted, the replicas stay the
// HPA's, and the agent keeps looking at the object all along.
func TestNoDriftUnderRealHPA(t *testing.T) {
	c := NewCase(t, "drift-real-hpa")
	rev := c.Commit(map[string]string{"app/web.yaml": WebDeployment("", false), "app/hpa.yaml": hpaManifest(3, 5)})
	c.Define(c.ArgoApplication("app", ""))
	c.WaitSynced(rev, false)
	ctx := t.Context()
	metric := func(name string) float64 {
		v, err := agentMetric(ctx, c.S, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	drift, heals := metric("flotilla_agent_drift_events_total"), metric("flotilla_agent_self_heal_total")
	scaledTo := func(n int32) {
		t.Helper()
		checks := metric("flotilla_agent_drift_checks_total")
		c.Eventually(2*time.Minute, fmt.Sprintf("the HPA controller scales web to %d and the agent looks", n), func() error {
			d, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if *d.Spec.Replicas != n || d.Status.AvailableReplicas != n {
				return fmt.Errorf("spec.replicas %d, %d available", *d.Spec.Replicas, d.Status.AvailableReplicas)
			}
			if got := metric("flotilla_agent_drift_checks_total"); got <= checks {
				return fmt.Errorf("the agent has not looked at the change yet (%v checks)", got)
			}
			return nil
		})
	}
	scaledTo(3)
	rev = c.Commit(map[string]string{"app/hpa.yaml": hpaManifest(4, 5)})
	c.WaitSynced(rev, false)
	scaledTo(4)
	if s := os.Getenv(ObserveEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s: %v", ObserveEnv, err)
		}
		checks := metric("flotilla_agent_drift_checks_total")
		t.Logf("observing the counters for %s", d)
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(d):
		}
		t.Logf("agent checks during the observation: %v", metric("flotilla_agent_drift_checks_total")-checks)
	}
	d, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 4 {
		t.Errorf("replicas %d, want the HPA's 4", *d.Spec.Replicas)
	}
	if got := metric("flotilla_agent_drift_events_total"); got != drift {
		t.Errorf("drift events went from %v to %v with no out-of-band change to a field the bundle sets", drift, got)
	}
	if got := metric("flotilla_agent_self_heal_total"); got != heals {
		t.Errorf("self-heals went from %v to %v", heals, got)
	}
}
