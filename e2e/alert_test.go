//go:build !unit

package e2e

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// scenarioAlertOnly: with selfHeal off, an out-of-band change is reported
// (the cluster turns OutOfSync at the hub, the object's diff is in
// `flotilla app get -o json`) and left in place; `flotilla app sync` puts
// the desired state back.
func scenarioAlertOnly(e *env) {
	const cl = "gamma"
	rev := e.commit("alert v1", map[string]string{
		"alert/deployment.yaml": deployment("alert", 2, "nginx:1.27"),
	})
	e.writeApp("alert", appSpec{name: "alert", path: "alert", ns: "alert", clusters: []string{cl}, prune: true, selfHeal: false}.yaml(e.repo.URL))
	e.waitSynced("alert", rev, cl)
	e.waitDeployment(cl, "alert", "alert", 2, true)

	e.kubectl(cl, "-n", "alert", "scale", "deployment/alert", "--replicas=4")
	a := e.waitApp("alert", "OutOfSync on gamma with the Deployment's diff", func(a api.AppView) error {
		c := a.Cluster(cl)
		if c == nil {
			return fmt.Errorf("does not target %s", cl)
		}
		if c.Sync != "OutOfSync" {
			return fmt.Errorf("%s is %s", cl, c.Sync)
		}
		for _, o := range c.Objects {
			if o.Kind == "Deployment" && o.Name == "alert" {
				if o.Sync != "OutOfSync" || !strings.Contains(o.Diff, "replicas") {
					return fmt.Errorf("deployment alert: sync %s, diff %q", o.Sync, o.Diff)
				}
				return nil
			}
		}
		return fmt.Errorf("no Deployment alert among %d objects", len(c.Objects))
	})
	for _, o := range a.Cluster(cl).Objects {
		if o.Kind == "Deployment" {
			e.t.Logf("drift reported by the hub for Deployment alert/alert:\n%s", o.Diff)
		}
	}
	// The agent has seen the drift and reported it: it did not revert it.
	d, err := e.clients[cl].AppsV1().Deployments("alert").Get(e.t.Context(), "alert", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if got := *d.Spec.Replicas; got != 4 {
		e.t.Fatalf("alert-only app: replicas %d after drift was reported, want the drifted 4 kept", got)
	}

	out := e.cli("app", "sync", "alert")
	e.t.Logf("flotilla app sync alert: %s", strings.TrimSpace(out))
	e.waitDeployment(cl, "alert", "alert", 2, true)
	e.waitSynced("alert", rev, cl)
}
