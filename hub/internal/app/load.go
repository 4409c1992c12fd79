package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadDir decodes every *.yaml, *.yml and *.json file under dir, in lexical
// path order, skipping folders whose name starts with a dot. Files are named
// by their path relative to dir. Two applications (or ApplicationSets, or
// cluster declarations) with the same name are an error naming both files.
func LoadDir(dir string) (Definitions, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return Definitions{}, fmt.Errorf("load definitions from %s: %w", dir, err)
	}
	slices.Sort(files)
	var all Definitions
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return Definitions{}, fmt.Errorf("load definitions: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		defs, err := Decode(filepath.ToSlash(rel), data)
		if err != nil {
			return Definitions{}, err
		}
		all.Apps = append(all.Apps, defs.Apps...)
		all.AppSets = append(all.AppSets, defs.AppSets...)
		all.Clusters = append(all.Clusters, defs.Clusters...)
		all.Warnings = append(all.Warnings, defs.Warnings...)
	}
	if err := all.checkUnique(); err != nil {
		return Definitions{}, err
	}
	return all, nil
}

func (d *Definitions) checkUnique() error {
	apps := map[string]string{}
	for _, a := range d.Apps {
		if prev, ok := apps[a.Name]; ok {
			return invalidf("Application %s is defined twice: in %s and in %s", a.Name, prev, a.File)
		}
		apps[a.Name] = a.File
	}
	sets := map[string]string{}
	for _, s := range d.AppSets {
		if prev, ok := sets[s.Name]; ok {
			return invalidf("ApplicationSet %s is defined twice: in %s and in %s", s.Name, prev, s.File)
		}
		sets[s.Name] = s.File
	}
	clusters := map[string]string{}
	for _, c := range d.Clusters {
		if prev, ok := clusters[c.Name]; ok {
			return invalidf("Cluster %s is declared twice: in %s and in %s", c.Name, prev, c.File)
		}
		clusters[c.Name] = c.File
	}
	return nil
}

// Resolve expands every ApplicationSet for clusters and returns all
// applications sorted by name. An ApplicationSet that fails to expand, or
// that generates an application whose name is already taken, is left out
// and reported in the returned error (one per set, joined); the others are
// still returned.
func (d *Definitions) Resolve(clusters []Cluster) ([]*Application, error) {
	out := slices.Clone(d.Apps)
	owner := map[string]string{}
	for _, a := range d.Apps {
		owner[a.Name] = a.File
	}
	var errs []error
	for _, s := range d.AppSets {
		apps, err := s.Expand(clusters)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var clash error
		for _, a := range apps {
			if prev, ok := owner[a.Name]; ok {
				clash = fmt.Errorf("%s: ApplicationSet %s: %w", s.File, s.Name, invalidf("generated Application %s is already defined in %s", a.Name, prev))
				break
			}
		}
		if clash != nil {
			errs = append(errs, clash)
			continue
		}
		for _, a := range apps {
			owner[a.Name] = fmt.Sprintf("%s (ApplicationSet %s)", s.File, s.Name)
		}
		out = append(out, apps...)
	}
	slices.SortFunc(out, func(a, b *Application) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}
