package gitsource

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// checkoutWriters is how many files a checkout writes at once. Creating a
// file is mostly kernel time, which runs in parallel; reading the objects
// stays on one goroutine (go-git's storage is not safe for concurrent use).
const checkoutWriters = 4

// fileWrite is one regular file to create.
type fileWrite struct {
	name string // path in the repository, relative to the root
	data []byte
	mode os.FileMode
}

// treeWriter writes the files of a tree under root: directories and
// symlinks at once, regular files' contents read in order and written by
// checkoutWriters goroutines. Every write goes through an os.Root, so no
// path or symlink in the tree can make it land outside root, and files are
// created exclusively (a tree naming one path twice is an error).
type treeWriter struct {
	root string
	fs   *os.Root
	dirs map[string]bool // created, relative to root
	work chan fileWrite
	wg   sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newTreeWriter(root string) (*treeWriter, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	fs, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	w := &treeWriter{root: root, fs: fs, dirs: map[string]bool{".": true}, work: make(chan fileWrite, 2*checkoutWriters)}
	for range checkoutWriters {
		w.wg.Go(func() {
			for fw := range w.work {
				if err := w.write(fw); err != nil {
					w.fail(fmt.Errorf("file %s: %w", fw.name, err))
				}
			}
		})
	}
	return w, nil
}

func (w *treeWriter) write(fw fileWrite) error {
	f, err := w.fs.OpenFile(fw.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fw.mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(fw.data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (w *treeWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = errors.Join(w.err, err)
}

func (w *treeWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close waits for the writers and returns the first errors.
func (w *treeWriter) close() error {
	close(w.work)
	w.wg.Wait()
	w.fs.Close()
	return w.failed()
}

// mkdir creates dir (relative to the root, slash-separated) and its
// parents, once.
func (w *treeWriter) mkdir(dir string) error {
	if w.dirs[dir] {
		return nil
	}
	if err := w.fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for d := dir; d != "." && d != "/" && !w.dirs[d]; d = path.Dir(d) {
		w.dirs[d] = true
	}
	return nil
}

// add validates f and queues it for writing.
func (w *treeWriter) add(f *object.File) error {
	if err := w.failed(); err != nil {
		return err
	}
	root := w.root
	target := filepath.Join(root, filepath.FromSlash(f.Name))
	if !strings.HasPrefix(target, root+string(filepath.Separator)) {
		return fmt.Errorf("file %s: path escapes the repository", f.Name)
	}
	if err := w.mkdir(path.Dir(path.Clean(f.Name))); err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	switch f.Mode {
	case filemode.Symlink:
		b, err := readBlob(f, 4096)
		if err != nil {
			return err
		}
		link := string(b)
		resolved := filepath.Clean(filepath.Join(filepath.Dir(target), link))
		if filepath.IsAbs(link) || !strings.HasPrefix(resolved, root+string(filepath.Separator)) {
			return fmt.Errorf("file %s: symlink to %q points outside the repository", f.Name, link)
		}
		return w.fs.Symlink(link, path.Clean(f.Name))
	case filemode.Submodule:
		return nil
	}
	data, err := readBlob(f, -1)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		mode = 0o755
	}
	w.work <- fileWrite{name: path.Clean(f.Name), data: data, mode: mode}
	return nil
}

// readBlob reads f's content, at most limit bytes when limit >= 0.
func readBlob(f *object.File, limit int64) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", f.Name, err)
	}
	defer r.Close()
	var src io.Reader = r
	if limit >= 0 {
		src = io.LimitReader(r, limit)
	}
	b, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", f.Name, err)
	}
	return b, nil
}
