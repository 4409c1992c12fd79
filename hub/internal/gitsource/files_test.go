//go:build !unit

package gitsource

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// TestTreeWriterStaysInRoot: a file written through a symlink that leads
// out of the checkout, and a path named twice, are errors; nothing lands
// outside the root.
func TestTreeWriterStaysInRoot(t *testing.T) {
	dir := t.TempDir()
	w, err := newTreeWriter(filepath.Join(dir, "root"), CheckoutLimits{})
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

// TestCheckoutSizeLimits writes a real commit with a file above the
// streaming threshold under several limits: a file over the per-file limit,
// or files adding up to more than the checkout limit, fail the checkout
// with an error naming the file and the limit; within the limits the big
// file is streamed to disk intact.
func TestCheckoutSizeLimits(t *testing.T) {
	work := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16) // 3 MiB
	for name, data := range map[string][]byte{"small.yaml": []byte("a: 1\n"), "blobs/big.bin": big} {
		p := filepath.Join(work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, work, "init", "-q", "--initial-branch=main")
	gitIn(t, work, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "add", "-A")
	gitIn(t, work, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "files")
	repo, err := git.PlainOpen(work)
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		limits CheckoutLimits
		want   string // in the error; "" for success
	}{
		{"defaults", CheckoutLimits{}, ""},
		{"per file", CheckoutLimits{MaxFileSize: 2 << 20}, "file blobs/big.bin: 3 MiB is larger than the limit of 2 MiB per file"},
		{"per checkout", CheckoutLimits{MaxSize: 3 << 20}, "file small.yaml: the checkout's files add up to more than the limit of 3 MiB"},
		{"no limits", CheckoutLimits{MaxFileSize: -1, MaxSize: -1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := repo.CommitObject(head.Hash())
			if err != nil {
				t.Fatal(err)
			}
			files, err := c.Files()
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "root")
			w, err := newTreeWriter(dir, tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			err = files.ForEach(w.add)
			if cerr := w.close(); err == nil {
				err = cerr
			}
			if tc.want != "" {
				if !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want ErrTooBig saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "blobs", "big.bin"))
			if err != nil || !bytes.Equal(got, big) {
				t.Errorf("blobs/big.bin: %d bytes, %v; want the 3 MiB committed", len(got), err)
			}
		})
	}
}

// TestCopyAtMost: a stream longer than its declared size is cut at the
// limit, not read to its end.
func TestCopyAtMost(t *testing.T) {
	var sink bytes.Buffer
	n, err := copyAtMost(&sink, io.LimitReader(zeros{}, 1<<30), 1<<20)
	if !errors.Is(err, ErrTooBig) || n != 1<<20+1 {
		t.Errorf("copyAtMost = %d, %v; want %d, ErrTooBig", n, err, 1<<20+1)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestManagerCheckoutLimits: Options.Checkout reaches the checkout of a
// commit fetched over HTTP; the error names the file and the limit.
func TestManagerCheckoutLimits(t *testing.T) {
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "r")
	if err := repo.Write(map[string][]byte{"big.yaml": bytes.Repeat([]byte("# padding\n"), 200<<10)}); err != nil {
		t.Fatal(err)
	}
	commit, err := repo.CommitAndPush("big")
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{Dir: filepath.Join(dir, "state"), AllowInsecureHTTP: true, Checkout: CheckoutLimits{MaxFileSize: 1 << 20}}, hclog.NewNullLogger())
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	_, err = m.Checkout(repo.URL, commit)
	if !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), "file big.yaml: 2.0 MiB is larger than the limit of 1 MiB per file") {
		t.Fatalf("checkout: %v, want big.yaml over the 1 MiB limit", err)
	}
}
