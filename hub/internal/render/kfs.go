package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errReadOnly is returned by rootFS for every write.
var errReadOnly = errors.New("the repository is read-only while rendering")

// rootFS is the file system kustomize sees: the disk, limited to the
// repository root (also through symbolic links), read-only, with some
// files replaced by in-memory content (the edited kustomization).
type rootFS struct {
	root      repoRoot
	disk      filesys.FileSystem
	overrides map[string][]byte // by resolved absolute path
}

var _ filesys.FileSystem = (*rootFS)(nil)

func newRootFS(root repoRoot) *rootFS {
	return &rootFS{root: root, disk: filesys.MakeFsOnDisk(), overrides: map[string][]byte{}}
}

func (f *rootFS) check(p string) (string, error) {
	return f.root.resolve(p)
}

func (f *rootFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (f *rootFS) Mkdir(string) error                  { return errReadOnly }
func (f *rootFS) MkdirAll(string) error               { return errReadOnly }
func (f *rootFS) RemoveAll(string) error              { return errReadOnly }
func (f *rootFS) WriteFile(string, []byte) error      { return errReadOnly }

func (f *rootFS) Open(p string) (filesys.File, error) {
	real, err := f.check(p)
	if err != nil {
		return nil, err
	}
	if data, ok := f.overrides[real]; ok {
		return &memFile{Reader: bytes.NewReader(data), name: filepath.Base(real), size: int64(len(data))}, nil
	}
	return f.disk.Open(real)
}

func (f *rootFS) IsDir(p string) bool {
	real, err := f.check(p)
	return err == nil && f.disk.IsDir(real)
}

func (f *rootFS) ReadDir(p string) ([]string, error) {
	real, err := f.check(p)
	if err != nil {
		return nil, err
	}
	return f.disk.ReadDir(real)
}

func (f *rootFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if _, err := f.check(p); err != nil {
		return "", "", err
	}
	d, name, err := f.disk.CleanedAbs(p)
	if err != nil {
		return "", "", err
	}
	if !f.root.contains(string(d)) {
		return "", "", fmt.Errorf("%s: %w", p, ErrOutsideRoot)
	}
	return d, name, nil
}

func (f *rootFS) Exists(p string) bool {
	real, err := f.check(p)
	if err != nil {
		return false
	}
	_, ok := f.overrides[real]
	return ok || f.disk.Exists(real)
}

func (f *rootFS) Glob(pattern string) ([]string, error) {
	if _, err := f.check(filepath.Dir(pattern)); err != nil {
		return nil, err
	}
	matches, err := f.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	out := matches[:0]
	for _, m := range matches {
		if _, err := f.check(m); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *rootFS) ReadFile(p string) ([]byte, error) {
	real, err := f.check(p)
	if err != nil {
		return nil, err
	}
	if data, ok := f.overrides[real]; ok {
		return bytes.Clone(data), nil
	}
	return f.disk.ReadFile(real)
}

func (f *rootFS) Walk(p string, walkFn filepath.WalkFunc) error {
	real, err := f.check(p)
	if err != nil {
		return err
	}
	return f.disk.Walk(real, walkFn)
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
