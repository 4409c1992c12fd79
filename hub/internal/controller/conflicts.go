package controller

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// conflictingApps names every app that shares an object with another app
// on one cluster (renderspec.CheckConflicts words the error).
func conflictingApps(byApp map[string]renderspec.AppObjects) []string {
	owners := map[manifest.Key]map[string]bool{}
	for name, ao := range byApp {
		for _, o := range ao.Objects {
			k := renderspec.KeyIn(o, ao.Namespace)
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
// path (Kustomize bases, Helm value files, Jsonnet imports, symbolic
// links), so that the whole commit, not
// the path's tree, must key its render cache.
func readsOutsidePath(root string, src app.Source) bool {
	if src.Helm != nil || src.Kustomize != nil {
		return true
	}
	dir := filepath.Join(root, filepath.FromSlash(src.Path))
	if src.Directory == nil {
		for _, n := range []string{"Chart.yaml", "kustomization.yaml", "kustomization.yml", "Kustomization"} {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				return true
			}
		}
	}
	// A plain directory reads elsewhere through Jsonnet imports and
	// symbolic links (resolved inside the repository).
	recurse := src.Directory != nil && src.Directory.Recurse
	outside := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			outside = true // cannot tell: key by the whole commit
		case d.IsDir() && p != dir && (!recurse || d.Name() == ".git"):
			return filepath.SkipDir
		case d.Type()&fs.ModeSymlink != 0, strings.HasSuffix(strings.ToLower(d.Name()), ".jsonnet"):
			outside = true
		}
		if outside {
			return filepath.SkipAll
		}
		return nil
	})
	return outside
}
