package engines

import (
	"bytes"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/ignore"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// readChart loads the chart in the real folder dir as helm's loader.LoadDir
// does (the chart's .helmignore and helm's default rules applied, linked
// folders followed, files in lexical order, a UTF-8 BOM dropped, subcharts
// in charts/ as folders or archives), but reading every file through the
// repository root and handing helm the list (loader.LoadFiles): helm never
// sees a folder, so it follows no link itself. A link that leads out of
// the repository, a linked folder that contains itself, and a file the
// checkout left out (unless .helmignore ignores it) are errors naming them.
func readChart(root *render.Root, dir string) (*chart.Chart, error) {
	rules := ignore.Empty()
	if data, err := root.ReadFile(path.Join(dir, ignore.HelmIgnore)); err == nil {
		r, err := ignore.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		rules = r
	}
	rules.AddDefaults()
	top, err := root.FS.Stat(dir)
	if err != nil {
		return nil, err
	}
	w := chartWalk{root: root, rules: rules}
	if err := w.walk("", dir, []fs.FileInfo{top}); err != nil {
		return nil, err
	}
	return loader.LoadFiles(w.files)
}

type chartWalk struct {
	root  *render.Root
	rules *ignore.Rules
	files []*loader.BufferedFile
}

// walk adds the files of the real folder dir, named name/... in the chart.
// ancestors are the folders walked down to dir (for link cycles).
func (w *chartWalk) walk(name, dir string, ancestors []fs.FileInfo) error {
	entries, err := w.root.ReadDir(dir)
	if err != nil {
		return err
	}
	type item struct {
		name string      // in the chart
		real string      // in the repository; "" when left out
		fi   fs.FileInfo // of the target, for links
	}
	var items []item
	for _, e := range entries {
		if strings.EqualFold(e.Name(), ".git") {
			continue // the checkout's own (gitsource.LeftOutFile), never the repository's
		}
		n, p := path.Join(name, e.Name()), path.Join(dir, e.Name())
		real, fi, err := w.root.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		items = append(items, item{n, real, fi})
	}
	for _, l := range w.root.LeftOutIn(dir) {
		if strings.EqualFold(l, ".git") {
			continue
		}
		items = append(items, item{name: path.Join(name, l), real: "", fi: leftOutInfo(l)})
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
	for _, it := range items {
		if it.fi.IsDir() {
			if w.rules.Ignore(it.name, it.fi) {
				continue
			}
			for _, a := range ancestors {
				if os.SameFile(a, it.fi) {
					return fmt.Errorf("%s: a symbolic link to a folder that contains it", it.name)
				}
			}
			if err := w.walk(it.name, it.real, append(ancestors, it.fi)); err != nil {
				return err
			}
			continue
		}
		if w.rules.Ignore(it.name, it.fi) {
			continue
		}
		if it.real == "" {
			return fmt.Errorf("%s: %w", it.name, w.root.LeftOutErr(path.Join(dir, path.Base(it.name))))
		}
		if !it.fi.Mode().IsRegular() {
			return fmt.Errorf("cannot load irregular file %s as it has file mode type bits set", it.name)
		}
		if it.fi.Size() > loader.MaxDecompressedFileSize {
			return fmt.Errorf("chart file %q is larger than the maximum file size %d", it.fi.Name(), loader.MaxDecompressedFileSize)
		}
		data, err := w.root.FS.ReadFile(it.real)
		if err != nil {
			return fmt.Errorf("error reading %s: %w", it.name, err)
		}
		w.files = append(w.files, &loader.BufferedFile{Name: it.name, Data: bytes.TrimPrefix(data, utf8BOM)})
	}
	return nil
}

// leftOutInfo describes a file the checkout left out, for .helmignore.
type leftOutInfo string

func (l leftOutInfo) Name() string       { return string(l) }
func (l leftOutInfo) Size() int64        { return 0 }
func (l leftOutInfo) Mode() fs.FileMode  { return fs.ModeSymlink }
func (l leftOutInfo) ModTime() time.Time { return time.Time{} }
func (l leftOutInfo) IsDir() bool        { return false }
func (l leftOutInfo) Sys() any           { return nil }
