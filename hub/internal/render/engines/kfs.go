package engines

import (
	"bytes"
	"errors"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"io/fs"
	"path"
	"path/filepath"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errReadOnly is returned by rootFS for every write.
var errReadOnly = errors.New("the repository is read-only while rendering")

// rootFS is the file system kustomize sees: the repository root, read
// through its os.Root (no path or symbolic link leads out of it, also
// through chains of links), read-only, with some files replaced by
// in-memory content (the edited kustomization). Kustomize asks with
// absolute paths; they are mapped into the root, or into the checkout of
// a remote base mounted beside it (see remoteState), each its own rootFS.
type rootFS struct {
	root      *render.Root
	overrides map[string][]byte // by real path relative to the root; may be files the repository does not have
	helm      *kzHelm           // helmCharts inflation (nil: refused)
	remote    *remoteState      // remote bases mounted beside the root (nil: none)
}

var _ filesys.FileSystem = (*rootFS)(nil)

func newRootFS(root *render.Root) *rootFS {
	return &rootFS{root: root, overrides: map[string][]byte{}}
}

func (f *rootFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (f *rootFS) Mkdir(string) error                  { return errReadOnly }
func (f *rootFS) MkdirAll(string) error               { return errReadOnly }
func (f *rootFS) RemoveAll(string) error              { return errReadOnly }
func (f *rootFS) WriteFile(string, []byte) error      { return errReadOnly }

func (f *rootFS) Open(p string) (filesys.File, error) {
	f = f.at(p)
	real, err := f.root.Resolve(p)
	if err != nil {
		return nil, err
	}
	if data, ok := f.overrides[real]; ok {
		return &memFile{Reader: bytes.NewReader(data), name: path.Base(real), size: int64(len(data))}, nil
	}
	return f.root.FS.Open(real)
}

func (f *rootFS) IsDir(p string) bool {
	f = f.at(p)
	_, fi, err := f.root.Stat(p)
	return err == nil && fi.IsDir()
}

// ReadDir lists the names in folder p.
func (f *rootFS) ReadDir(p string) ([]string, error) {
	f = f.at(p)
	real, err := f.root.Resolve(p)
	if err != nil {
		return nil, err
	}
	entries, err := f.root.ReadDir(real)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name()
	}
	return out, nil
}

// CleanedAbs returns p's real folder (absolute, in the root) and, when p
// is a file, its name; p must exist.
func (f *rootFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	f = f.at(p)
	if real, err := f.root.Resolve(p); err == nil {
		if _, ok := f.overrides[real]; ok {
			return filesys.ConfirmedDir(f.root.Abs(path.Dir(real))), path.Base(real), nil
		}
	}
	real, fi, err := f.root.Stat(p)
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		return filesys.ConfirmedDir(f.root.Abs(real)), "", nil
	}
	return filesys.ConfirmedDir(f.root.Abs(path.Dir(real))), path.Base(real), nil
}

func (f *rootFS) Exists(p string) bool {
	f = f.at(p)
	real, err := f.root.Resolve(p)
	if err != nil {
		return false
	}
	if _, ok := f.overrides[real]; ok {
		return true
	}
	_, err = f.root.FS.Stat(real)
	return err == nil
}

// Glob returns the absolute paths matching pattern (filepath.Match
// syntax), looked up through the root.
func (f *rootFS) Glob(pattern string) ([]string, error) {
	f = f.at(pattern)
	rel, err := f.root.RelOf(pattern)
	if err != nil {
		return nil, err
	}
	matches, err := fs.Glob(f.root.FS.FS(), rel)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		if _, err := f.root.Resolve(m); err == nil {
			out = append(out, f.root.Abs(m))
		}
	}
	return out, nil
}

func (f *rootFS) ReadFile(p string) ([]byte, error) {
	f = f.at(p)
	real, err := f.root.Resolve(p)
	if err != nil {
		return nil, err
	}
	if data, ok := f.overrides[real]; ok {
		return bytes.Clone(data), nil
	}
	return f.root.FS.ReadFile(real)
}

// Walk walks the tree at p as filepath.Walk does (links not followed),
// with absolute paths.
func (f *rootFS) Walk(p string, walkFn filepath.WalkFunc) error {
	f = f.at(p)
	real, err := f.root.Resolve(p)
	if err != nil {
		return err
	}
	return fs.WalkDir(f.root.FS.FS(), real, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return walkFn(f.root.Abs(q), nil, err)
		}
		fi, err := d.Info()
		return walkFn(f.root.Abs(q), fi, err)
	})
}

// memFile is an in-memory, read-only filesys.File.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (m *memFile) Write([]byte) (int, error)  { return 0, errReadOnly }
func (m *memFile) Close() error               { return nil }
func (m *memFile) Stat() (fs.FileInfo, error) { return m, nil }
func (m *memFile) Name() string               { return m.name }
func (m *memFile) Size() int64                { return m.size }
func (m *memFile) Mode() fs.FileMode          { return 0o444 }
func (m *memFile) ModTime() time.Time         { return time.Time{} }
func (m *memFile) IsDir() bool                { return false }
func (m *memFile) Sys() any                   { return nil }
