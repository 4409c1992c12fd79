//go:build !unit

package e2e

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// scenarioTargeting: an app selected by clusterSelector env=staging follows
// the labels: a cluster relabelled to staging gains it, a cluster relabelled
// away loses it, and with prune on its objects are deleted there.
func scenarioTargeting(e *env) {
	rev := e.commit("tgt v1", map[string]string{
		"tgt/deployment.yaml": deployment("tgt", 1, "nginx:1.27"),
		"tgt/config.yaml":     cmManifest("tgt", map[string]string{"tier": "staging"}),
	})
	e.writeApp("tgt", appSpec{name: "tgt", path: "tgt", ns: "tgt", selector: map[string]string{"env": "staging"}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("tgt", rev, "gamma")
	e.waitTargets("tgt", "gamma")

	// beta joins staging: it gains the app.
	e.cli("cluster", "label", "beta", "env=staging")
	e.waitTargets("tgt", "beta", "gamma")
	e.waitSynced("tgt", rev, "beta", "gamma")
	e.waitDeployment("beta", "tgt", "tgt", 1, true)

	// gamma leaves staging: it loses the app, and prune deletes its objects.
	e.cli("cluster", "label", "gamma", "env=prod")
	e.waitTargets("tgt", "beta")
	e.waitGone("gamma: deployment tgt/tgt", func(ctx context.Context) error {
		_, err := e.clients["gamma"].AppsV1().Deployments("tgt").Get(ctx, "tgt", metav1.GetOptions{})
		return err
	})
	e.waitGone("gamma: configmap tgt/tgt", func(ctx context.Context) error {
		_, err := e.clients["gamma"].CoreV1().ConfigMaps("tgt").Get(ctx, "tgt", metav1.GetOptions{})
		return err
	})
	// beta keeps it.
	if d, err := e.configMapData("beta", "tgt", "tgt"); err != nil || d["tier"] != "staging" {
		e.t.Fatalf("beta: configmap tgt/tgt: %v %v", d, err)
	}

	// Labels back as the suite started; the app moves back to gamma only.
	e.cli("cluster", "label", "beta", "env=prod")
	e.cli("cluster", "label", "gamma", "env=staging")
	e.waitTargets("tgt", "gamma")
	e.waitSynced("tgt", rev, "gamma")
	e.waitGone("beta: deployment tgt/tgt", func(ctx context.Context) error {
		_, err := e.clients["beta"].AppsV1().Deployments("tgt").Get(ctx, "tgt", metav1.GetOptions{})
		return err
	})
}

// waitTargets waits until app targets exactly clusters.
func (e *env) waitTargets(app string, clusters ...string) {
	e.t.Helper()
	want := fmt.Sprint(clusters)
	e.waitApp(app, "targets "+want, func(a api.AppView) error {
		var got []string
		for _, c := range a.Clusters {
			got = append(got, c.Cluster)
		}
		if fmt.Sprint(got) != want {
			return fmt.Errorf("targets %v", got)
		}
		return nil
	})
}
