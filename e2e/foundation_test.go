//go:build !unit

package e2e

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestCommitReachesClusters is the thinnest whole path: a commit to a git
// repo served over HTTP reaches two real clusters through the hub and two
// enrolled agents (separate processes, mTLS), and a second commit is
// followed until the Deployment is Available.
func TestCommitReachesClusters(t *testing.T) {
	parallel(t)
	e := newEnv(t, "east", "west")
	rev1 := e.commit("web v1", map[string]string{
		"apps/web/deployment.yaml": deployment("web", 2, "nginx:1.27"),
		"apps/web/service.yaml":    service("web"),
	})
	e.writeApp("web", webApp("web", e.repo.URL, "apps/web", "web", []string{"east", "west"}, true))
	e.startHub(hubDefaults())
	e.enroll("east", "env=prod")
	e.enroll("west", "env=prod")

	ctx := t.Context()
	if err := e.hub.WaitSynced(ctx, 2*time.Minute, "web", rev1, false, "east", "west"); err != nil {
		t.Fatal(err)
	}
	for name, cs := range e.clients {
		e.waitDeployment(name, "web", "web", 2, false)
		if _, err := cs.CoreV1().Services("web").Get(ctx, "web", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: service web/web: %v", name, err)
		}
	}

	rev2 := e.commit("web: 3 replicas", map[string]string{"apps/web/deployment.yaml": deployment("web", 3, "nginx:1.27")})
	for name := range e.clients {
		e.waitDeployment(name, "web", "web", 3, true)
	}
	if err := e.hub.WaitSynced(ctx, 2*time.Minute, "web", rev2, true, "east", "west"); err != nil {
		t.Fatal(err)
	}
}

func hubDefaults() harness.HubOptions { return harness.HubOptions{PollInterval: time.Hour} }

// TestPollingPicksUpPush: with no webhook, the hub's ref polling alone
// notices a push within the poll interval (plus jitter) and the cluster
// follows.
func TestPollingPicksUpPush(t *testing.T) {
	parallel(t)
	e := newEnv(t, "solo")
	e.commit("cfg v1", map[string]string{"apps/cfg/cm.yaml": configMap("settings", "v1")})
	e.writeApp("cfg", webApp("cfg", e.repo.URL, "apps/cfg", "cfg", []string{"solo"}, true))
	e.startHub(harness.HubOptions{PollInterval: 2 * time.Second})
	e.enroll("solo")
	ctx := t.Context()
	if err := e.hub.WaitSynced(ctx, time.Minute, "cfg", "", false, "solo"); err != nil {
		t.Fatal(err)
	}
	// Push without a webhook: only polling can see it.
	if err := e.repo.Write(map[string][]byte{"apps/cfg/cm.yaml": []byte(configMap("settings", "v2"))}); err != nil {
		t.Fatal(err)
	}
	rev, err := e.repo.CommitAndPush("cfg v2")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.hub.WaitSynced(ctx, time.Minute, "cfg", rev, false, "solo"); err != nil {
		t.Fatal(err)
	}
	err = harness.Eventually(ctx, 30*time.Second, 100*time.Millisecond, func() error {
		cm, err := e.clients["solo"].CoreV1().ConfigMaps("cfg").Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["version"] != "v2" {
			return fmt.Errorf("configmap version %q, want v2", cm.Data["version"])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func configMap(name, version string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  version: %s\n", name, version)
}
