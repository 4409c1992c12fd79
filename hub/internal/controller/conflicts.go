package controller

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// conflictingApps names every app that shares an object with another app
// on one cluster (render.CheckConflicts words the error).
func conflictingApps(byApp map[string]render.AppObjects) []string {
	owners := map[manifest.Key]map[string]bool{}
	for name, ao := range byApp {
		for _, o := range ao.Objects {
			k := render.KeyIn(o, ao.Namespace)
			if owners[k] == nil {
				owners[k] = map[string]bool{}
			}
			owners[k][name] = true
		}
	}
	hit := map[string]bool{}
	for _, apps := range owners {
		if len(apps) > 1 {
			for a := range apps {
				hit[a] = true
			}
		}
	}
	out := make([]string, 0, len(hit))
	for a := range hit {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// readsOutsidePath reports whether rendering src may read files outside its
// path (Kustomize bases, Helm value files), so that the whole commit, not
// the path's tree, must key its render cache.
func readsOutsidePath(root string, src app.Source) bool {
	if src.Helm != nil || src.Kustomize != nil {
		return true
	}
	if src.Directory != nil {
		return false
	}
	dir := filepath.Join(root, filepath.FromSlash(src.Path))
	for _, n := range []string{"Chart.yaml", "kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}
