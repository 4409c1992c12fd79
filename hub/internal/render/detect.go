package render

import (
	"os"
	"path/filepath"

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
func detect(dir string, s app.Source) (kind, error) {
	switch {
	case s.Helm != nil:
		return kindHelm, nil
	case s.Kustomize != nil:
		return kindKustomize, nil
	case s.Directory != nil:
		return kindDirectory, nil
	case exists(filepath.Join(dir, "Chart.yaml")):
		return kindHelm, nil
	case kustomizationFile(dir) != "":
		return kindKustomize, nil
	}
	return kindDirectory, nil
}

func kustomizationFile(dir string) string {
	for _, n := range kustomizationNames {
		if p := filepath.Join(dir, n); exists(p) {
			return p
		}
	}
	return ""
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
