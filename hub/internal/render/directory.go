package render

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
// repository; links to folders are not followed.
func renderDirectory(ctx context.Context, root repoRoot, dir string, d *app.Directory) ([]origined, error) {
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
	var out []origined
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			if p != dir && (!d.Recurse || e.Name() == ".git") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".yaml" && ext != ".yml" && ext != ".json" && ext != ".jsonnet" {
			return nil
		}
		if exclude != nil && exclude.MatchString(rel) || include != nil && !include.MatchString(rel) {
			return nil
		}
		origin := root.rel(p)
		if ext == ".jsonnet" {
			return fmt.Errorf("%s: Jsonnet is not supported (exclude it with directory.exclude)", origin)
		}
		real, err := root.resolve(p)
		if err != nil {
			return err
		}
		if e.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(real); err == nil && st.IsDir() {
				return nil
			}
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return err
		}
		objs, err := parseFile(origin, ext, data)
		if err != nil {
			return err
		}
		for _, o := range objs {
			out = append(out, origined{obj: o, origin: origin})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
