package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// ErrOutsideRoot is wrapped by errors about a path (or a symbolic link)
// that leads out of the repository.
var ErrOutsideRoot = errors.New("outside the repository")

// repoRoot is a repository checkout, with symbolic links resolved.
type repoRoot struct {
	path string // absolute, symlinks resolved
}

func newRepoRoot(root string) (repoRoot, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return repoRoot{}, fmt.Errorf("repository root %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return repoRoot{}, fmt.Errorf("repository root %s: %w", root, err)
	}
	return repoRoot{path: real}, nil
}

// contains reports whether the absolute, resolved path p is inside root.
func (r repoRoot) contains(p string) bool {
	return p == r.path || strings.HasPrefix(p, r.path+string(filepath.Separator))
}

// rel names p relative to the root in messages ("." for the root).
func (r repoRoot) rel(p string) string {
	rel, err := filepath.Rel(r.path, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(rel)
}

// resolve returns the real path of p (absolute, or relative to the root),
// refusing one that leaves the root, also through symbolic links. A path
// that does not exist is resolved as far as it exists.
func (r repoRoot) resolve(p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.path, p)
	}
	p = filepath.Clean(p)
	if !r.contains(p) {
		return "", fmt.Errorf("%s: %w", r.rel(p), ErrOutsideRoot)
	}
	real, err := evalExisting(p)
	if err != nil {
		return "", err
	}
	if !r.contains(real) {
		return "", fmt.Errorf("%s (a symbolic link to %s): %w", r.rel(p), r.rel(real), ErrOutsideRoot)
	}
	return real, nil
}

// evalExisting resolves symbolic links in the longest existing prefix of p.
func evalExisting(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	rp, err := evalExisting(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}

// dir resolves a source path (relative to the root) to a folder.
func (r repoRoot) dir(rel string) (string, error) {
	if err := app.ValidatePath(rel); err != nil {
		return "", fmt.Errorf("%q: %w", rel, ErrOutsideRoot)
	}
	d, err := r.resolve(filepath.FromSlash(rel))
	if err != nil {
		return "", err
	}
	st, err := os.Stat(d)
	if err != nil {
		return "", fmt.Errorf("%q: %w", rel, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%q is not a folder", rel)
	}
	return d, nil
}

// checkLinks refuses symbolic links under dir that lead out of the root.
func (r repoRoot) checkLinks(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if _, err := r.resolve(p); err != nil {
				return err
			}
		}
		return nil
	})
}
