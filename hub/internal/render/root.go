package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// ErrOutsideRoot is wrapped by errors about a path (or a symbolic link)
// that leads out of the repository.
var ErrOutsideRoot = errors.New("outside the repository")

// ErrLeftOut is wrapped by errors about a path the checkout did not write
// (a symbolic link it refused, see gitsource.LeftOutFile).
var ErrLeftOut = errors.New("left out of the checkout")

// ErrRemoteDisabled is wrapped by errors about a kustomization that names
// something kustomize would fetch over the network or clone.
var ErrRemoteDisabled = errors.New("remote loading is disabled")

// maxLinkHops bounds the symbolic links followed to resolve one path (as
// the kernel's ELOOP limit does).
const maxLinkHops = 40

// repoRoot is a repository checkout opened as an os.Root. Every file a
// render reads is resolved by resolve (symbolic links followed inside the
// root only) and read through the os.Root, which itself refuses any path
// that would leave the root: nothing outside the checkout is reachable,
// whatever the links and however they chain. Paths are slash-separated
// and relative to the root ("." for the root) unless said otherwise.
type Root struct {
	Path string // absolute, symlinks resolved; for kustomize's absolute paths
	FS   *os.Root
	left map[string]string // paths the checkout left out → why
}

func OpenRoot(root string) (*Root, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	r, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	left, err := gitsource.LeftOut(r)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	return &Root{Path: real, FS: r, left: left}, nil
}

func (r *Root) Close() { r.FS.Close() }

// relOf turns p (absolute, or relative to the root) into a clean path
// relative to the root, refusing one that leaves it by its text.
func (r *Root) RelOf(p string) (string, error) {
	if filepath.IsAbs(p) {
		rel, err := filepath.Rel(r.Path, filepath.Clean(p))
		if err != nil || !filepath.IsLocal(rel) && rel != "." {
			return "", fmt.Errorf("%s: %w", p, ErrOutsideRoot)
		}
		return filepath.ToSlash(rel), nil
	}
	c := filepath.Clean(p)
	if c != "." && !filepath.IsLocal(c) {
		return "", fmt.Errorf("%s: %w", filepath.ToSlash(p), ErrOutsideRoot)
	}
	return filepath.ToSlash(c), nil
}

// abs returns the absolute path of rel.
func (r *Root) Abs(rel string) string {
	return filepath.Join(r.Path, filepath.FromSlash(rel))
}

// leftOutErr is the error for reading the left-out path p.
func (r *Root) LeftOutErr(p string) error {
	return fmt.Errorf("%s: the symbolic link was %w: %s", p, ErrLeftOut, r.left[p])
}

// resolve returns the real path of p (absolute, or relative to the root):
// relative to the root, with no symbolic link in it. Links are followed
// as the kernel does, each from the folder holding it; one that leads out
// of the root or to an absolute path, and a path the checkout left out,
// are errors naming them. A path that does not exist is resolved as far as
// it exists.
func (r *Root) Resolve(p string) (string, error) {
	rel, err := r.RelOf(p)
	if err != nil {
		return "", err
	}
	var done []string // resolved, real folders (and a last file)
	todo := strings.Split(rel, "/")
	hops, via := 0, ""
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", fmt.Errorf("%s%s: %w", rel, via, ErrOutsideRoot)
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(slices.Clone(done), c)...)
		if _, ok := r.left[cur]; ok {
			return "", r.LeftOutErr(cur)
		}
		fi, err := r.FS.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return path.Join(append([]string{cur}, todo...)...), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", fmt.Errorf("%s: more than %d symbolic links", rel, maxLinkHops)
		}
		target, err := r.FS.Readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") || filepath.IsAbs(target) {
			return "", fmt.Errorf("%s (a symbolic link to %s): %w", cur, target, ErrOutsideRoot)
		}
		via = fmt.Sprintf(" (through the symbolic link %s to %s)", cur, target)
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// stat resolves p and returns what it is.
func (r *Root) Stat(p string) (string, fs.FileInfo, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return "", nil, err
	}
	fi, err := r.FS.Stat(real)
	if err != nil {
		return "", nil, err
	}
	return real, fi, nil
}

// readFile resolves p and reads it.
func (r *Root) ReadFile(p string) ([]byte, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	return r.FS.ReadFile(real)
}

// isFile reports whether p is (or links to) a file.
func (r *Root) IsFile(p string) bool {
	_, fi, err := r.Stat(p)
	return err == nil && !fi.IsDir()
}

// readDir lists the real folder dir (as resolve returns it), sorted by name.
func (r *Root) ReadDir(dir string) ([]fs.DirEntry, error) {
	f, err := r.FS.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// leftOutIn returns the names of the entries of the real folder dir that
// the checkout left out, sorted.
func (r *Root) LeftOutIn(dir string) []string {
	var out []string
	for p := range r.left {
		if path.Dir(p) == dir {
			out = append(out, path.Base(p))
		}
	}
	slices.Sort(out)
	return out
}

// dir resolves a source path (relative to the root) to a real folder.
func (r *Root) Dir(rel string) (string, error) {
	if err := app.ValidatePath(rel); err != nil {
		return "", fmt.Errorf("%q: %w", rel, ErrOutsideRoot)
	}
	d, fi, err := r.Stat(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%q: %w", rel, err)
		}
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%q is not a folder", rel)
	}
	return d, nil
}
