package render

import (
	"path"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// Kind is how a source renders.
type Kind int

// The kinds of sources.
const (
	KindDirectory Kind = iota // plain YAML and JSON (and Jsonnet) files
	KindKustomize             // a kustomization
	KindHelm                  // a Helm chart
)

// kustomizationNames are the file names kustomize reads, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Detect decides how dir is rendered: by the source's helm, kustomize or
// directory field when one is set, otherwise by the files in dir, as Argo
// CD does (Chart.yaml: Helm; a kustomization: Kustomize; else a directory).
func Detect(root *Root, dir string, s app.Source) Kind {
	switch {
	case s.Helm != nil:
		return KindHelm
	case s.Kustomize != nil:
		return KindKustomize
	case s.Directory != nil:
		return KindDirectory
	case root.IsFile(path.Join(dir, "Chart.yaml")):
		return KindHelm
	case KustomizationFile(root, dir) != "":
		return KindKustomize
	}
	return KindDirectory
}

// KustomizationFile returns the kustomization file in dir (relative to the
// root), or "".
func KustomizationFile(root *Root, dir string) string {
	for _, n := range kustomizationNames {
		if p := path.Join(dir, n); root.IsFile(p) {
			return p
		}
	}
	return ""
}
