package archtest

import "testing"

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
	checkDeps(t, "./agent/cmd/flotilla-agent", module+"agent/internal/run", agentForbidden, nil,
		"the agent", "it uses the dynamic client and links nothing of the hub")
}
