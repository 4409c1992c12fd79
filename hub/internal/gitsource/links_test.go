package gitsource

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tree is the layout the link tests share: folders a, a/b, a/b/c, stuff,
// files a/f, a/b/g, stuff/ok.yaml, and the link a/b/c/up → ../../../stuff.
func testKinds() map[string]entryKind {
	return map[string]entryKind{
		".": kindDir, "a": kindDir, "a/b": kindDir, "a/b/c": kindDir, "a/b/c/box": kindDir, "stuff": kindDir,
		"a/f": kindFile, "a/b/g": kindFile, "stuff/ok.yaml": kindFile,
		"a/b/c/up": kindLink,
	}
}

func TestResolveLink(t *testing.T) {
	for _, tc := range []struct {
		link, target string
		want         string // "" when refused
		why          string // in the refusal
	}{
		{"a/b/c/up", "../../../stuff", "stuff", ""},
		{"a/b/c/box/x", "../up/../../../../state/admin-token", "", "leads through a/b/c/up, itself a symbolic link"},
		{"a/l", "b/c/up", "", "itself a symbolic link"},
		{"a/l", "b/c/up/ok.yaml", "", "itself a symbolic link"},
		{"l", "/etc/passwd", "", "absolute"},
		{"a/l", "../../outside", "", "leads out of the repository"},
		{"l", "..", "", "leads out of the repository"},
		{"a/b/l", "../../stuff/ok.yaml", "stuff/ok.yaml", ""},
		{"a/b/l", "g", "a/b/g", ""},
		{"a/b/l", "./g", "a/b/g", ""},
		{"a/b/l", "..", "a", ""},
		{"a/b/l", "../..", ".", ""},
		{"a/l", "f/..", "", "a/f, a file"},
		{"a/l", "f/", "", "a/f, a file"},
		{"a/l", "missing", "", "a/missing is not in the repository"},
		{"a/l", "", "", "empty target"},
		{"a/l", "b//g", "a/b/g", ""},
	} {
		got, err := resolveLink(testKinds(), tc.link, tc.target)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("%s → %q: %q, %v; want %q", tc.link, tc.target, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s → %q: %q, %v; want refused: %s", tc.link, tc.target, got, err, tc.why)
		}
	}
}

func keys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// assertInside fails t when any path under dir, or any path through a
// link under dir, resolves outside dir.
func assertInside(t testing.TB, dir string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink == 0 {
			return nil
		}
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Errorf("link %s does not resolve: %v", p, err)
			return nil
		}
		if !within(real, r) {
			t.Errorf("link %s resolves outside the checkout, to %s", p, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// fuzzLinkSites are where FuzzCheckoutLinks puts its links.
var fuzzLinkSites = []string{"l0", "a/l1", "a/b/l2", "a/b/c/l3", "stuff/l4", "a/b/c/box/l5", "l6", "a/l7"}

// FuzzCheckoutLinks writes the test tree with links at fuzzLinkSites whose
// targets are the lines of the input, then follows every link written and
// every path made of a link site and a line of the probe input: read
// through an os.Root (as the renderer reads) it never reaches the file or
// folder next to the checkout, and cleaned first it never resolves
// outside the checkout, whatever the links and however they chain.
func FuzzCheckoutLinks(f *testing.F) {
	f.Add("../../../stuff\n../up/../../../../secret\nl1\n/etc/passwd", "..\n../..\nok.yaml")
	f.Add("a/b\nl0/../..\n../a/l1/../../secret\n.", "l2/../../../secret\n../../../../secret")
	f.Add("../../stuff\nl1/c\n../l0/../../secret\nc/box", "l3/l5/../../../../../secret")
	f.Fuzz(func(t *testing.T, targets, probes string) {
		base := t.TempDir()
		if err := os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(base, "root")
		w, err := newTreeWriter(dir, CheckoutLimits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"a/b/c/box", "stuff"} {
			if err := w.mkdir(d); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"a/f", "a/b/g", "stuff/ok.yaml"} {
			if err := w.claim(name, kindFile); err != nil {
				t.Fatal(err)
			}
			w.work <- fileWrite{name: name, data: []byte(name), mode: 0o644}
		}
		lines := strings.Split(targets, "\n")
		for i, site := range fuzzLinkSites {
			if i >= len(lines) || strings.ContainsRune(lines[i], 0) {
				break
			}
			if err := w.addLink(site, lines[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		assertInside(t, dir)
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		outside := []string{base, filepath.Join(base, "secret")}
		for _, site := range fuzzLinkSites {
			for probe := range strings.SplitSeq(probes, "\n") {
				raw := site + "/" + probe
				// As the renderer reads: through os.Root, which resolves
				// ".." after a link by the kernel's rules and refuses to
				// leave the root.
				if fi, err := root.Stat(raw); err == nil {
					for _, o := range outside {
						if oi, err := os.Stat(o); err == nil && os.SameFile(fi, oi) {
							t.Errorf("%s read through the root reaches %s", raw, o)
						}
					}
				}
				// As a consumer that cleans paths first: a path inside
				// the checkout by its text resolves inside it.
				p := path.Clean(raw)
				if !filepath.IsLocal(p) {
					continue
				}
				r, err := filepath.EvalSymlinks(filepath.Join(dir, p))
				if err == nil && !within(real, r) {
					t.Errorf("%s resolves outside the checkout, to %s", p, r)
				}
			}
		}
	})
}
