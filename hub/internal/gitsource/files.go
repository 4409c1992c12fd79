package gitsource

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func writeFile(root string, f *object.File) error {
	target := filepath.Join(root, filepath.FromSlash(f.Name))
	if !strings.HasPrefix(target, root+string(filepath.Separator)) {
		return fmt.Errorf("file %s: path escapes the repository", f.Name)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	switch f.Mode {
	case filemode.Symlink:
		r, err := f.Reader()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(r, 4096))
		r.Close()
		if err != nil {
			return err
		}
		link := string(b)
		resolved := filepath.Clean(filepath.Join(filepath.Dir(target), link))
		if filepath.IsAbs(link) || !strings.HasPrefix(resolved, root+string(filepath.Separator)) {
			return fmt.Errorf("file %s: symlink to %q points outside the repository", f.Name, link)
		}
		return os.Symlink(link, target)
	case filemode.Submodule:
		return nil
	}
	r, err := f.Reader()
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	defer r.Close()
	mode := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		mode = 0o755
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	return out.Close()
}
