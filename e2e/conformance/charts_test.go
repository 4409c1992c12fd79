//go:build !unit

package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/testsupport/chartrepo"
)

// TestChartFromOCIRegistry: an Argo CD Application pins a chart in an OCI
// registry (CNCF Distribution over TLS with credentials; Argo CD's
// scheme-less repoURL) to 1.2.x. It converges to 1.2.0. Then 1.2.1 and
// 1.3.0 are pushed to the registry, with no git commit: on the app's
// refresh (`flotilla app refresh`, as a webhook does for git; the poll does
// the same later) 1.2.1 rolls out and 1.3.0 does not.
func TestChartFromOCIRegistry(t *testing.T) {
	c := NewCase(t, "oci-chart")
	reg := c.S.Registry
	chartName := "web-" + c.Name
	push := func(version string) {
		reg.Push(t, "charts", chartrepo.Package(t, t.TempDir(), chartName, version))
	}
	push("1.2.0")
	c.Define(fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: default
  source:
    repoURL: %s/charts
    chart: %s
    targetRevision: 1.2.x
    helm:
      releaseName: web
  destination: {name: %s, namespace: %s}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
`, c.Name, reg.Host, chartName, ClusterName, c.Namespace))
	ctx := t.Context()
	// The chart renders ConfigMap <release>-<chart> saying its version.
	version := func() (string, error) {
		cm, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "web-"+chartName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return cm.Data["version"], nil
	}
	c.Eventually(3*time.Minute, "chart 1.2.0 deployed", func() error {
		if v, err := version(); err != nil || v != "1.2.0" {
			a, aerr := c.S.Hub.App(ctx, c.Name)
			return fmt.Errorf("version %q: %v (app %s/%s %q %+v %v)", v, err, a.Sync, a.Health, a.Error, a.Clusters, aerr)
		}
		return nil
	})
	if a := c.App(); !strings.HasPrefix(a.Revision, "1.2.0@sha256:") {
		t.Errorf("app revision %q, want 1.2.0@sha256:...", a.Revision)
	}

	push("1.2.1")
	push("1.3.0")
	if _, err := c.S.Hub.CLI(ctx, "app", "refresh", c.Name); err != nil {
		t.Fatal(err)
	}
	c.Eventually(3*time.Minute, "chart 1.2.1 rolled out without a commit", func() error {
		if v, err := version(); err != nil || v != "1.2.1" {
			return fmt.Errorf("version %q: %v", v, err)
		}
		if a := c.App(); !strings.HasPrefix(a.Revision, "1.2.1@sha256:") || a.Sync != "Synced" {
			return fmt.Errorf("app at %q, %s", a.Revision, a.Sync)
		}
		return nil
	})
	if v, err := version(); err != nil || v != "1.2.1" {
		t.Errorf("after convergence: version %q, %v; 1.3.0 is outside 1.2.x", v, err)
	}
}
