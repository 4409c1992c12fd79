package app

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadDir decodes every *.yaml, *.yml and *.json file under dir, in lexical
// path order, skipping folders whose name starts with a dot. Files are named
// by their path relative to dir. A definition that cannot be used (see
// Decode), and every one of two applications (or ApplicationSets, or
// cluster declarations) with the same name, are listed in Broken; the
// others are returned. The error is about reading the folder only.
func LoadDir(dir string) (Definitions, error) {
	files, err := definitionFiles(dir)
	if err != nil {
		return Definitions{}, err
	}
	var all Definitions
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return Definitions{}, fmt.Errorf("load definitions: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		defs, _ := Decode(filepath.ToSlash(rel), data) // broken ones are in defs.Broken
		all.Merge(defs)
	}
	all.DropDuplicates()
	return all, nil
}

// Merge appends everything of o to d.
func (d *Definitions) Merge(o Definitions) {
	d.Apps = append(d.Apps, o.Apps...)
	d.AppSets = append(d.AppSets, o.AppSets...)
	d.Clusters = append(d.Clusters, o.Clusters...)
	d.Projects = append(d.Projects, o.Projects...)
	d.Warnings = append(d.Warnings, o.Warnings...)
	d.Broken = append(d.Broken, o.Broken...)
}

// DropDuplicates moves every definition whose name is used twice (by two
// applications, two ApplicationSets or two cluster declarations) to Broken,
// with an error naming both files: neither copy silently wins.
func (d *Definitions) DropDuplicates() {
	d.Apps = dropDuplicates(d, d.Apps, KindApp, "is defined twice", func(a *Application) (string, string) { return a.Name, a.File })
	d.AppSets = dropDuplicates(d, d.AppSets, KindAppSet, "is defined twice", func(s *AppSet) (string, string) { return s.Name, s.File })
	d.Clusters = dropDuplicates(d, d.Clusters, KindCluster, "is declared twice", func(c ClusterDecl) (string, string) { return c.Name, c.File })
	d.Projects = dropDuplicates(d, d.Projects, KindProject, "is defined twice", func(p *Project) (string, string) { return p.Name, p.File })
}

func dropDuplicates[T any](d *Definitions, items []T, kind, says string, id func(T) (name, file string)) []T {
	files := map[string][]string{}
	for _, it := range items {
		n, f := id(it)
		files[n] = append(files[n], f)
	}
	out := items[:0]
	reported := map[string]bool{}
	for _, it := range items {
		n, f := id(it)
		if len(files[n]) == 1 {
			out = append(out, it)
			continue
		}
		if !reported[n] {
			reported[n] = true
			err := invalidf("%s %s %s: in %s", kind, n, says, strings.Join(files[n], " and in "))
			d.Broken = append(d.Broken, newBroken(kind, n, f, err))
		}
	}
	return out
}

// Resolve expands every ApplicationSet for clusters and returns all
// applications sorted by name. An ApplicationSet that fails to expand, or
// that generates an application whose name is already taken, is left out
// and reported in the returned error (one per set, joined); the others are
// still returned.
func (d *Definitions) Resolve(clusters []Cluster) ([]*Application, error) {
	apps, broken := d.ResolveSets(clusters)
	return apps, Definitions{Broken: broken}.Err()
}

// ResolveSets is Resolve, listing each ApplicationSet left out as Broken
// (Kind ApplicationSet). Generated applications carry their set's name.
func (d *Definitions) ResolveSets(clusters []Cluster) ([]*Application, []Broken) {
	out := slices.Clone(d.Apps)
	owner := map[string]string{}
	for _, a := range d.Apps {
		owner[a.Name] = a.File
	}
	var broken []Broken
	for _, s := range d.AppSets {
		apps, err := s.Expand(clusters)
		if err == nil {
			for _, a := range apps {
				if prev, ok := owner[a.Name]; ok {
					err = fmt.Errorf("%s: ApplicationSet %s: %w", s.File, s.Name, invalidf("generated Application %s is already defined in %s", a.Name, prev))
					break
				}
			}
		}
		if err != nil {
			broken = append(broken, newBroken(KindAppSet, s.Name, s.File, err))
			continue
		}
		for _, a := range apps {
			a.Set, a.Parent = s.Name, s.Parent
			owner[a.Name] = fmt.Sprintf("%s (ApplicationSet %s)", s.File, s.Name)
		}
		out = append(out, apps...)
	}
	slices.SortFunc(out, func(a, b *Application) int { return strings.Compare(a.Name, b.Name) })
	return out, broken
}

// definitionFiles lists the files LoadDir reads, in lexical path order.
func definitionFiles(dir string) ([]string, error) {
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
		return nil, fmt.Errorf("load definitions from %s: %w", dir, err)
	}
	slices.Sort(files)
	return files, nil
}

// DigestDir returns a digest of what LoadDir would read from dir (each
// file's path and content): equal digests, equal definitions. It reads the
// files but decodes nothing.
func DigestDir(dir string) (string, error) {
	files, err := definitionFiles(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("load definitions: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%d:%s%d:", len(rel), rel, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
