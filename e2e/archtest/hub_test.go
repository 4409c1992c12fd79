package archtest

import "testing"

// hubForbidden are the import path prefixes the flotilla-hub binary must
// not link: Helm, Kustomize, the OCI client and kubectl run in the
// flotilla-render worker binary (renders, chart fetching, the
// kustomization checks), so that the hub does not map their pages.
var hubForbidden = []string{
	"helm.sh/",
	"sigs.k8s.io/kustomize/",
	"oras.land/",
	"k8s.io/kubectl/",
	"github.com/google/go-jsonnet",
	module + "hub/internal/render/engines",
	module + "hub/internal/renderworker",
}

// TestHubDependencies: `go list -deps ./hub/cmd/flotilla-hub` contains no
// Helm, Kustomize, oras, kubectl or Jsonnet package; they belong to
// ./hub/cmd/flotilla-render, which links them (checked too, so that the
// rule keeps looking at the right binaries).
func TestHubDependencies(t *testing.T) {
	checkDeps(t, "./hub/cmd/flotilla-hub", module+"hub/internal/server", hubForbidden, nil,
		"flotilla-hub", "Helm, Kustomize, oras, kubectl and Jsonnet run in flotilla-render workers (package renderworker)")
	render := listDeps(t, "./hub/cmd/flotilla-render")
	for _, p := range []string{"helm.sh/helm/v3/pkg/engine", "sigs.k8s.io/kustomize/api/krusty", module + "hub/internal/chartsource"} {
		if _, ok := render[p]; !ok {
			t.Errorf("flotilla-render does not link %s: the hub's workers no longer render or fetch charts there", p)
		}
	}
}
