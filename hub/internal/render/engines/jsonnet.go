package engines

import (
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"io/fs"
	"path"
	"strings"

	"github.com/google/go-jsonnet"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// maxJsonnetOutput bounds what one Jsonnet file may evaluate to.
const maxJsonnetOutput = 64 << 20

// evalJsonnet evaluates the Jsonnet file p (relative to the root) as Argo
// CD does for a directory source: with the app's external variables,
// top-level arguments and library folders, every import read through the
// repository root. The result is JSON: one object or an array of them.
//
// Evaluation cannot be interrupted, so a source with Jsonnet files renders
// in a worker process (see hasJsonnet), which the hub kills at the render
// time limit.
func evalJsonnet(root *render.Root, p string, j *app.Jsonnet) ([]byte, error) {
	if j == nil {
		j = &app.Jsonnet{}
	}
	vm := jsonnet.MakeVM()
	vm.Importer(&rootImporter{root: root, libs: j.Libs, cache: map[string]jsonnet.Contents{}})
	vm.ErrorFormatter.SetMaxStackTraceSize(10)
	for _, v := range j.ExtVars {
		if v.Code {
			vm.ExtCode(v.Name, v.Value)
		} else {
			vm.ExtVar(v.Name, v.Value)
		}
	}
	for _, v := range j.TLAs {
		if v.Code {
			vm.TLACode(v.Name, v.Value)
		} else {
			vm.TLAVar(v.Name, v.Value)
		}
	}
	out, err := vm.EvaluateFile(p) // read through the importer
	if err != nil {
		return nil, fmt.Errorf("%s: jsonnet: %s", p, strings.TrimSpace(err.Error()))
	}
	if len(out) > maxJsonnetOutput {
		return nil, fmt.Errorf("%s: jsonnet output of %d bytes is over the limit of %d", p, len(out), maxJsonnetOutput)
	}
	return []byte(out), nil
}

// rootImporter resolves Jsonnet imports inside the repository: beside the
// importing file first, then in each library folder, never outside the
// root (an import that leaves it is an error naming it).
type rootImporter struct {
	root  *render.Root
	libs  []string
	cache map[string]jsonnet.Contents
}

// Import implements jsonnet.Importer.
func (im *rootImporter) Import(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	if path.IsAbs(importedPath) {
		return jsonnet.Contents{}, "", fmt.Errorf("import %q: %w (absolute path)", importedPath, render.ErrOutsideRoot)
	}
	candidates := []string{path.Join(path.Dir(importedFrom), importedPath)}
	for _, l := range im.libs {
		candidates = append(candidates, path.Join(l, importedPath))
	}
	var firstErr error
	for _, c := range candidates {
		rel, err := im.root.RelOf(c)
		if err != nil {
			return jsonnet.Contents{}, "", fmt.Errorf("import %q from %s: %w", importedPath, importedFrom, err)
		}
		if got, ok := im.cache[rel]; ok {
			return got, rel, nil
		}
		data, err := im.root.ReadFile(rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		c := jsonnet.MakeContentsRaw(data)
		im.cache[rel] = c
		return c, rel, nil
	}
	if firstErr != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("import %q from %s: %w", importedPath, importedFrom, firstErr)
	}
	return jsonnet.Contents{}, "", fmt.Errorf("import %q from %s: not found beside it or in libs %v", importedPath, importedFrom, im.libs)
}
