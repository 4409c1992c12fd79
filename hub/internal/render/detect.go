package render

import (
	"path"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

type kind int

const (
	kindDirectory kind = iota
	kindKustomize
	kindHelm
)

// kustomizationNames are the file names kustomize reads, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// detect decides how dir is rendered: by the source's helm, kustomize or
// directory field when one is set, otherwise by the files in dir, as Argo
// CD does (Chart.yaml: Helm; a kustomization: Kustomize; else a directory).
func detect(root *Root, dir string, s app.Source) kind {
	switch {
	case s.Helm != nil:
		return kindHelm
	case s.Kustomize != nil:
		return kindKustomize
	case s.Directory != nil:
		return kindDirectory
	case root.IsFile(path.Join(dir, "Chart.yaml")):
		return kindHelm
	case kustomizationFile(root, dir) != "":
		return kindKustomize
	}
	return kindDirectory
}

// kustomizationFile returns the kustomization file in dir (relative to the
// root), or "".
func kustomizationFile(root *Root, dir string) string {
	for _, n := range kustomizationNames {
		if p := path.Join(dir, n); root.IsFile(p) {
			return p
		}
	}
	return ""
}
