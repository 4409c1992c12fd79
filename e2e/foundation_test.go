package e2e

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/e2e/harness"
)

// TestCommitReachesClusters is the thinnest whole path: a commit to a git
// repo served over HTTP reaches two real clusters through the hub and two
// enrolled agents (separate processes, mTLS), and a second commit is
// followed until the Deployment is Available.
func TestCommitReachesClusters(t *testing.T) {
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
