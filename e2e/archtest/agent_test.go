package archtest

import (
	"strings"
	"testing"
)

// agentForbidden are packages the agent must not link: client-go's typed
// clientset, typed informers and their scheme register every API group
// (the agent's binary doubled, 25 to 52 MB, when the live view and the
// cluster policy used them); the agent reads and writes through the
// dynamic client. Helm, Kustomize and go-git are the hub's.
var agentForbidden = []string{
	"k8s.io/client-go/kubernetes",
	"k8s.io/client-go/informers",
	"helm.sh/",
	"sigs.k8s.io/kustomize/",
	"github.com/go-git/",
	module + "hub/",
}

// TestAgentDependencies: go list -deps of the agent names none of
// agentForbidden.
func TestAgentDependencies(t *testing.T) {
	deps := listDeps(t, "./agent/cmd/flotilla-agent")
	if _, ok := deps[module+"agent/internal/run"]; !ok {
		t.Fatalf("go list -deps ./agent/cmd/flotilla-agent lacks agent/internal/run (%d packages): the test no longer looks at the agent", len(deps))
	}
	for pkg := range deps {
		for _, p := range agentForbidden {
			if strings.HasPrefix(pkg, p) {
				t.Errorf("the agent links %s (matches %q); it uses the dynamic client and links nothing of the hub", pkg, p)
			}
		}
	}
}
