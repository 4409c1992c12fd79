//go:build !unit

package e2e

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scenarioDemo is Argo CD's getting-started demo on two clusters: an
// Application with automated sync, prune and selfHeal deploys a Deployment
// (replicas 2) and a Service; a new commit rolls out a new image and prunes
// the object it removed; `kubectl scale --replicas=5` returns to 2.
func scenarioDemo(e *env) {
	clusters := []string{"alpha", "beta"}
	rev1 := e.commit("demo v1", map[string]string{
		"demo/deployment.yaml": deployment("demo", 2, "nginx:1.27"),
		"demo/service.yaml":    service("demo"),
		"demo/extra.yaml":      cmManifest("demo-extra", map[string]string{"feature": "on"}),
	})
	e.writeApp("demo", appSpec{name: "demo", path: "demo", ns: "demo", clusters: clusters, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("demo", rev1, clusters...)
	for _, c := range clusters {
		e.waitDeployment(c, "demo", "demo", 2, true)
		if _, err := e.clients[c].CoreV1().Services("demo").Get(e.t.Context(), "demo", metav1.GetOptions{}); err != nil {
			e.t.Fatalf("%s: service demo/demo: %v", c, err)
		}
		if d, err := e.configMapData(c, "demo", "demo-extra"); err != nil || d == nil {
			e.t.Fatalf("%s: configmap demo/demo-extra: %v %v", c, d, err)
		}
	}

	// A new version, and one object fewer.
	rev2 := e.commit("demo v2: nginx 1.28, drop demo-extra", map[string]string{
		"demo/deployment.yaml": deployment("demo", 2, "nginx:1.28"),
		"demo/extra.yaml":      "",
	})
	for _, c := range clusters {
		e.eventually(c+": demo rolled out nginx:1.28", func() error {
			img, err := e.deploymentImage(c, "demo", "demo")
			if err != nil {
				return err
			}
			if img != "nginx:1.28" {
				return fmt.Errorf("image %s", img)
			}
			return nil
		})
		e.waitGone(c+": configmap demo/demo-extra", func(ctx context.Context) error {
			_, err := e.clients[c].CoreV1().ConfigMaps("demo").Get(ctx, "demo-extra", metav1.GetOptions{})
			return err
		})
		e.waitDeployment(c, "demo", "demo", 2, true)
	}
	e.waitSynced("demo", rev2, clusters...)

	// Out-of-band scale: kubectl takes the replicas field over; selfHeal
	// puts it back.
	start := time.Now()
	e.kubectl("alpha", "-n", "demo", "scale", "deployment/demo", "--replicas=5")
	e.waitDeployment("alpha", "demo", "demo", 2, false)
	e.t.Logf("kubectl scale --replicas=5 reverted to 2 within %s (seen by polling every 100 ms)", time.Since(start).Round(time.Millisecond))
	e.waitDeployment("alpha", "demo", "demo", 2, true)
	e.waitSynced("demo", rev2, clusters...)
}
