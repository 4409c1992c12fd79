//go:build !unit

package gitsource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCheckoutLinks checks out a real commit with the links of the
// attack in issue 13: a folder link that stays in the repository, then
// links that pass through it to climb out of the checkout. The first is
// written; the chained, absolute and escaping ones are left out and listed
// with why; nothing in the checkout resolves outside it.
func TestCheckoutLinks(t *testing.T) {
	repo, m := newRepo(t)
	if err := repo.Write(map[string][]byte{
		"stuff/ok.yaml":       []byte("ok: 1\n"),
		"a/b/c/Chart.yaml":    []byte("name: c\n"),
		"a/b/c/box/keep.yaml": []byte("keep: 1\n"),
	}); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"a/b/c/up":    "../../../stuff",
		"a/b/c/box/x": "../up/../../../../state/admin-token",
		"a/b/c/l2l":   "up",
		"abs":         "/etc/passwd",
		"out":         "../outside",
		"good":        "stuff/ok.yaml",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(repo.Work, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	commit, err := repo.CommitAndPush("links")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	dir, err := m.Checkout(repo.URL, commit)
	if err != nil {
		t.Fatalf("checkout: %v (refused links must be left out, not fail the checkout)", err)
	}
	for name, want := range map[string]bool{"a/b/c/up": true, "good": true, "a/b/c/box/x": false, "a/b/c/l2l": false, "abs": false, "out": false} {
		_, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
		if got := err == nil; got != want {
			t.Errorf("link %s written: %v, want %v", name, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "b", "c", "up", "ok.yaml")); err != nil || string(b) != "ok: 1\n" {
		t.Errorf("a/b/c/up/ok.yaml through the folder link: %q, %v", b, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	left, err := LeftOut(root)
	if err != nil {
		t.Fatal(err)
	}
	wantWhy := map[string]string{
		"a/b/c/box/x": "itself a symbolic link",
		"a/b/c/l2l":   "itself a symbolic link",
		"abs":         "absolute",
		"out":         "leads out of the repository",
	}
	if diff := cmp.Diff(keys(wantWhy), keys(left)); diff != "" {
		t.Errorf("left out (-want +got):\n%s", diff)
	}
	for name, why := range wantWhy {
		if !strings.Contains(left[name], why) {
			t.Errorf("left out %s: %q, want it to say %q", name, left[name], why)
		}
	}
	assertInside(t, dir)
}
