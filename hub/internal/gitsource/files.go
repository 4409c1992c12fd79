package gitsource

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// checkoutWriters is how many files a checkout writes at once. Creating a
// file is mostly kernel time, which runs in parallel; reading the objects
// stays on one goroutine (go-git's storage is not safe for concurrent use).
const checkoutWriters = 4

// streamAbove is the size above which a file is copied from its blob to
// disk on the reading goroutine instead of being read into memory and
// handed to a writer: the writers' queue then holds at most a few MiB.
const streamAbove = 1 << 20

// Default checkout limits. A configuration repository holds text: the
// largest files seen in practice are CRD bundles and vendored subchart
// archives of a few MiB, so 64 MiB per file leaves a wide margin while a
// blob of hundreds of MiB (an attack, or a mistake) is refused before it
// is read. 512 MiB per checkout bounds the disk one commit can take (a
// checkout is kept per commit in use) at well above any real config repo.
const (
	DefaultMaxFileSize     = 64 << 20
	DefaultMaxCheckoutSize = 512 << 20
)

// ErrTooBig is wrapped by errors about a file or a checkout over its limit.
var ErrTooBig = errors.New("over the checkout size limit")

// CheckoutLimits bound what a checkout writes. Zero values take the
// defaults; a negative value means no limit.
type CheckoutLimits struct {
	// MaxFileSize is the largest file (default DefaultMaxFileSize).
	MaxFileSize int64
	// MaxSize is the sum of all files (default DefaultMaxCheckoutSize).
	MaxSize int64
}

func (l CheckoutLimits) withDefaults() CheckoutLimits {
	if l.MaxFileSize == 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxSize == 0 {
		l.MaxSize = DefaultMaxCheckoutSize
	}
	return l
}

// fileWrite is one regular file to create.
type fileWrite struct {
	name string // path in the repository, relative to the root
	data []byte
	mode os.FileMode
}

// treeWriter writes the files of a tree under root: directories at once,
// regular files' contents read in order and written by checkoutWriters
// goroutines (large ones streamed on the reading goroutine), symbolic
// links last, once the whole tree is known (see resolveLink: links that
// leave the tree, are absolute, or lead to or through another link are left
// out and listed in the RefusedLinksFile). Every write goes through an
// os.Root, so no path or symlink in the tree can make it land outside root,
// and files are created exclusively (a tree naming one path twice is an
// error).
type treeWriter struct {
	root   string
	fs     *os.Root
	limits CheckoutLimits
	total  int64                // bytes of files added so far
	dirs   map[string]bool      // created, relative to root
	kinds  map[string]entryKind // every path of the tree
	links  map[string]string    // symbolic link → its target, made at close
	refuse map[string]string    // path left out → why
	work   chan fileWrite
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newTreeWriter(root string, limits CheckoutLimits) (*treeWriter, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	fs, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	w := &treeWriter{
		root: root, fs: fs, limits: limits.withDefaults(),
		dirs:  map[string]bool{".": true},
		kinds: map[string]entryKind{".": kindDir},
		links: map[string]string{}, refuse: map[string]string{},
		work: make(chan fileWrite, 2*checkoutWriters),
	}
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

// close makes the symbolic links, writes the list of refused ones, waits
// for the writers and returns the first errors.
func (w *treeWriter) close() error {
	if w.failed() == nil {
		if err := w.makeLinks(); err != nil {
			w.fail(err)
		}
	}
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
	for d := dir; d != "." && d != "/" && !w.dirs[d]; d = path.Dir(d) {
		if k, ok := w.kinds[d]; ok && k != kindDir {
			return fmt.Errorf("%s is named twice in the tree", d)
		}
	}
	if err := w.fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for d := dir; d != "." && d != "/" && !w.dirs[d]; d = path.Dir(d) {
		w.dirs[d] = true
		w.kinds[d] = kindDir
	}
	return nil
}

// claim records name as a path of kind k; a path named twice is an error.
func (w *treeWriter) claim(name string, k entryKind) error {
	if _, dup := w.kinds[name]; dup {
		return fmt.Errorf("file %s: named twice in the tree", name)
	}
	w.kinds[name] = k
	return nil
}

// add validates f and writes it, queues it for writing, or (a symbolic
// link) keeps it for close.
func (w *treeWriter) add(f *object.File) error {
	if err := w.failed(); err != nil {
		return err
	}
	name := path.Clean(f.Name)
	root := w.root
	target := filepath.Join(root, filepath.FromSlash(f.Name))
	if !strings.HasPrefix(target, root+string(filepath.Separator)) || !filepath.IsLocal(filepath.FromSlash(f.Name)) {
		return fmt.Errorf("file %s: path escapes the repository", f.Name)
	}
	if hasGitDir(name) {
		// As git checkout does, never write a .git entry: the name is
		// reserved for the checkout's own metadata.
		w.refuse[name] = "a path inside .git is never checked out"
		return nil
	}
	if err := w.mkdir(path.Dir(name)); err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	switch f.Mode {
	case filemode.Symlink:
		b, err := readBlob(f, 4096)
		if err != nil {
			return err
		}
		return w.addLink(name, string(b))
	case filemode.Submodule:
		return nil
	}
	if err := w.claim(name, kindFile); err != nil {
		return err
	}
	if f.Size > w.limits.MaxFileSize && w.limits.MaxFileSize >= 0 {
		return fmt.Errorf("file %s: %s is larger than the limit of %s per file: %w", f.Name, byteSize(f.Size), byteSize(w.limits.MaxFileSize), ErrTooBig)
	}
	w.total += f.Size
	if w.total > w.limits.MaxSize && w.limits.MaxSize >= 0 {
		return fmt.Errorf("file %s: the checkout's files add up to more than the limit of %s: %w", f.Name, byteSize(w.limits.MaxSize), ErrTooBig)
	}
	mode := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		mode = 0o755
	}
	if f.Size > streamAbove {
		return w.stream(f, name, mode)
	}
	data, err := readBlob(f, w.limits.MaxFileSize)
	if err != nil {
		return err
	}
	w.work <- fileWrite{name: name, data: data, mode: mode}
	return nil
}

// addLink keeps the symbolic link name → target for close.
func (w *treeWriter) addLink(name, target string) error {
	if err := w.claim(name, kindLink); err != nil {
		return err
	}
	w.links[name] = target
	return nil
}

// stream copies f's content to disk, never more than its size limit.
func (w *treeWriter) stream(f *object.File, name string, mode os.FileMode) error {
	r, err := f.Reader()
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	defer r.Close()
	out, err := w.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	_, err = copyAtMost(out, r, w.limits.MaxFileSize)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	return nil
}

// copyAtMost copies r to dst, failing once more than limit bytes came
// (limit < 0: no limit).
func copyAtMost(dst io.Writer, r io.Reader, limit int64) (int64, error) {
	if limit < 0 {
		return io.Copy(dst, r)
	}
	n, err := io.Copy(dst, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("more than the limit of %s per file: %w", byteSize(limit), ErrTooBig)
	}
	return n, err
}

// readBlob reads f's content, failing when it holds more than limit bytes
// (limit < 0: no limit).
func readBlob(f *object.File, limit int64) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", f.Name, err)
	}
	defer r.Close()
	var b strings.Builder
	if _, err := copyAtMost(&b, r, limit); err != nil {
		return nil, fmt.Errorf("file %s: %w", f.Name, err)
	}
	return []byte(b.String()), nil
}

// hasGitDir reports whether a component of the slash path p is ".git" (in
// any letter case).
func hasGitDir(p string) bool {
	for c := range strings.SplitSeq(p, "/") {
		if strings.EqualFold(c, ".git") {
			return true
		}
	}
	return false
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// makeLinks creates the symbolic links that resolveLink accepts and records
// the others in RefusedLinksFile.
func (w *treeWriter) makeLinks() error {
	names := make([]string, 0, len(w.links))
	for n := range w.links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		target := w.links[n]
		if _, err := resolveLink(w.kinds, n, target); err != nil {
			w.refuse[n] = err.Error()
			continue
		}
		if err := w.fs.Symlink(target, n); err != nil {
			return fmt.Errorf("file %s: %w", n, err)
		}
	}
	return writeRefused(w.fs, w.refuse)
}
