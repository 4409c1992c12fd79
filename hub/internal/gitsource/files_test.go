package gitsource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTreeWriterStaysInRoot: a file written through a symlink that leads
// out of the checkout, and a path named twice, are errors; nothing lands
// outside the root.
func TestTreeWriterStaysInRoot(t *testing.T) {
	dir := t.TempDir()
	w, err := newTreeWriter(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.fs.Symlink("..", "up"); err != nil {
		t.Fatal(err)
	}
	if err := w.mkdir("sub/deeper"); err != nil {
		t.Fatal(err)
	}
	w.work <- fileWrite{name: "up/escaped", data: []byte("x"), mode: 0o644}
	w.work <- fileWrite{name: "sub/deeper/ok", data: []byte("ok"), mode: 0o644}
	w.work <- fileWrite{name: "twice", data: []byte("1"), mode: 0o644}
	w.work <- fileWrite{name: "twice", data: []byte("2"), mode: 0o644}
	err = w.close()
	if err == nil {
		t.Fatal("close: no error, want errors for up/escaped and twice")
	}
	for _, want := range []string{"file up/escaped", "file twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "escaped")); !os.IsNotExist(err) {
		t.Errorf("a file was written outside the root: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "root", "sub", "deeper", "ok")); err != nil || string(b) != "ok" {
		t.Errorf("sub/deeper/ok = %q, %v", b, err)
	}
}
