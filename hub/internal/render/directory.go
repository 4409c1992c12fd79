package render

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// renderDirectory reads the *.yaml, *.yml and *.json files of dir (and its
// subfolders with Recurse, except .git), in lexical order, keeping those
// matching Include and not matching Exclude (globs over the path relative to
// dir). Other files are skipped, except *.jsonnet, which is refused rather
// than ignored. Symbolic links to files are followed inside the
// repository; links to folders are not followed. A manifest file the
// checkout left out (a refused symbolic link) is an error naming it. Every
// file is read through the repository root.
func renderDirectory(ctx context.Context, e Engines, root *Root, dir string, d *app.Directory) ([]Origined, error) {
	if d == nil {
		d = &app.Directory{}
	}
	include, err := app.CompileGlob(d.Include)
	if err != nil {
		return nil, fmt.Errorf("directory.include: %w", err)
	}
	exclude, err := app.CompileGlob(d.Exclude)
	if err != nil {
		return nil, fmt.Errorf("directory.exclude: %w", err)
	}
	w := dirWalk{ctx: ctx, engines: e, root: root, top: dir, recurse: d.Recurse, include: include, exclude: exclude, jsonnet: d.Jsonnet}
	if err := w.walk(dir); err != nil {
		return nil, err
	}
	return w.out, nil
}

type dirWalk struct {
	ctx              context.Context
	engines          Engines
	root             *Root
	top              string
	recurse          bool
	include, exclude *regexp.Regexp
	jsonnet          *app.Jsonnet
	out              []Origined
}

// walk reads the manifests of the real folder dir, as filepath.WalkDir
// visits them (names in lexical order, a folder's files where it sorts).
func (w *dirWalk) walk(dir string) error {
	entries, err := w.root.ReadDir(dir)
	if err != nil {
		return err
	}
	names := make(map[string]fs.DirEntry, len(entries))
	for _, e := range entries {
		names[e.Name()] = e
	}
	for _, l := range w.root.LeftOutIn(dir) {
		names[l] = nil
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		e, p := names[name], path.Join(dir, name)
		if e != nil && e.IsDir() {
			if w.recurse && name != ".git" {
				if err := w.walk(p); err != nil {
					return err
				}
			}
			continue
		}
		rel := strings.TrimPrefix(p, w.top+"/")
		if w.top == "." {
			rel = p
		}
		ext := strings.ToLower(path.Ext(name))
		if ext != ".yaml" && ext != ".yml" && ext != ".json" && ext != ".jsonnet" {
			continue
		}
		if w.exclude != nil && w.exclude.MatchString(rel) || w.include != nil && !w.include.MatchString(rel) {
			continue
		}
		if e == nil {
			return w.root.LeftOutErr(p)
		}
		real, fi, err := w.root.Stat(p)
		if err != nil {
			return err
		}
		if e.Type()&fs.ModeSymlink != 0 && fi.IsDir() {
			continue
		}
		var data []byte
		if ext == ".jsonnet" {
			ext = ".json"
			if w.engines == nil {
				return fmt.Errorf("%s: jsonnet: %w", p, ErrNoEngine)
			}
			data, err = w.engines.Jsonnet(w.root, real, w.jsonnet)
		} else {
			data, err = w.root.FS.ReadFile(real)
		}
		if err != nil {
			return err
		}
		objs, err := parseFile(p, ext, data)
		if err != nil {
			return err
		}
		for _, o := range objs {
			w.out = append(w.out, Origined{Obj: o, Origin: p})
		}
	}
	return nil
}

// parseFile parses a manifest file; a JSON file may also hold an array of
// objects.
func parseFile(origin, ext string, data []byte) ([]*unstructured.Unstructured, error) {
	if ext == ".json" && bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
		var items []map[string]any
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, fmt.Errorf("%s: %w: %v", origin, manifest.ErrInvalidObject, err)
		}
		out := make([]*unstructured.Unstructured, 0, len(items))
		for i, m := range items {
			o := &unstructured.Unstructured{Object: m}
			if err := manifest.Validate(o); err != nil {
				return nil, fmt.Errorf("%s: item %d: %w", origin, i+1, err)
			}
			out = append(out, o)
		}
		return out, nil
	}
	return manifest.Parse(origin, data)
}

// hasJsonnet reports whether the directory source at dir holds a Jsonnet
// file it would evaluate (so that it renders in a worker).
func hasJsonnet(root *Root, dir string, recurse bool) bool {
	entries, err := root.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		switch {
		case e.IsDir():
			if recurse && e.Name() != ".git" && hasJsonnet(root, path.Join(dir, e.Name()), true) {
				return true
			}
		case strings.EqualFold(path.Ext(e.Name()), ".jsonnet"):
			return true
		}
	}
	return false
}
