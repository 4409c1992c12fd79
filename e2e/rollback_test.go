//go:build !unit

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// scenarioRollback: a bad release is undone by `git revert` (the hub
// follows the branch back), then by `flotilla app rollback` (the hub pins
// the app to an earlier revision without touching git).
func scenarioRollback(e *env) {
	const cl = "beta"
	good := e.commit("rb v1", map[string]string{
		"rb/deployment.yaml": deployment("rb", 1, "nginx:1.26"),
		"rb/config.yaml":     cmManifest("rb", map[string]string{"release": "v1"}),
	})
	e.writeApp("rb", appSpec{name: "rb", path: "rb", ns: "rb", clusters: []string{cl}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("rb", good, cl)
	bad := e.commit("rb v2 (bad)", map[string]string{
		"rb/deployment.yaml": deployment("rb", 1, "nginx:1.99-broken"),
		"rb/config.yaml":     cmManifest("rb", map[string]string{"release": "v2"}),
	})
	e.waitRelease(cl, "v2", "nginx:1.99-broken")

	e.t.Run("GitRevert", func(t *testing.T) {
		e := e.sub(t)
		reverted, err := e.repo.Revert(bad)
		if err != nil {
			t.Fatal(err)
		}
		e.webhook()
		e.waitRelease(cl, "v1", "nginx:1.26")
		e.waitSynced("rb", reverted, cl)
	})

	e.t.Run("CLI", func(t *testing.T) {
		e := e.sub(t)
		v3 := e.commit("rb v3", map[string]string{
			"rb/deployment.yaml": deployment("rb", 1, "nginx:1.28"),
			"rb/config.yaml":     cmManifest("rb", map[string]string{"release": "v3"}),
		})
		e.waitRelease(cl, "v3", "nginx:1.28")
		e.waitSynced("rb", v3, cl)

		out := e.cli("app", "rollback", "rb", good)
		t.Logf("flotilla app rollback rb %s:\n%s", good[:12], strings.TrimSpace(out))
		e.waitRelease(cl, "v1", "nginx:1.26")
		e.waitApp("rb", "pinned to "+good[:12]+" and Synced", func(a api.AppView) error {
			c := a.Cluster(cl)
			if c == nil {
				return fmt.Errorf("does not target %s", cl)
			}
			if c.Pinned != good || c.Revision != good || c.Sync != "Synced" {
				return fmt.Errorf("%s: pinned %q revision %q sync %s", cl, c.Pinned, c.Revision, c.Sync)
			}
			return nil
		})
		// A commit while pinned does not move the cluster (auto-sync is
		// suspended); unpinning follows the branch again.
		v4 := e.commit("rb v4", map[string]string{
			"rb/config.yaml": cmManifest("rb", map[string]string{"release": "v4"}),
		})
		e.waitApp("rb", "app revision "+v4[:12]+" seen by the hub", func(a api.AppView) error {
			if a.Revision != v4 {
				return fmt.Errorf("revision %s", a.Revision)
			}
			return nil
		})
		if d, err := e.configMapData(cl, "rb", "rb"); err != nil || d["release"] != "v1" {
			t.Fatalf("pinned app moved: configmap rb/rb %v %v, want release v1", d, err)
		}
		out = e.cli("app", "unpin", "rb")
		t.Logf("flotilla app unpin rb: %s", strings.TrimSpace(out))
		e.waitRelease(cl, "v4", "nginx:1.28")
		e.waitSynced("rb", v4, cl)
	})
}

// waitRelease waits until the rb app on cluster runs release with image.
func (e *env) waitRelease(cl, release, image string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s: rb at %s (%s)", cl, release, image), func() error {
		d, err := e.configMapData(cl, "rb", "rb")
		if err != nil {
			return err
		}
		if d["release"] != release {
			return fmt.Errorf("configmap rb/rb release=%q", d["release"])
		}
		img, err := e.deploymentImage(cl, "rb", "rb")
		if err != nil {
			return err
		}
		if img != image {
			return fmt.Errorf("deployment rb/rb image %s", img)
		}
		return nil
	})
}
