package gitsource

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// ErrTooLarge is returned when a fetch brings more than the configured
// limit: a pack larger than it, or an object whose inflated size exceeds it.
var ErrTooLarge = errors.New("over the fetch size limit")

// cappedStorage is a mirror's object store whose incoming packs are checked
// before go-git sees them: go-git writes a fetched pack through
// PackfileWriter, whatever the transport (https or ssh). The pack is spooled
// to a file with its size counted as it arrives, then every object header
// is read (without keeping any object) and its inflated size, and for a
// delta the size of the object it builds, checked against the limit. Only a
// pack that passes is handed to the real store, so a refused fetch leaves
// the mirror as it was.
type cappedStorage struct {
	*filesystem.Storage
	name  string // the repo, redacted, for errors
	dir   string // where packs are spooled
	limit int64  // 0: no limit
}

// PackfileWriter implements storer.PackfileWriter.
func (s *cappedStorage) PackfileWriter() (io.WriteCloser, error) {
	f, err := os.CreateTemp(s.dir, ".incoming-*.pack")
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", s.name, err)
	}
	return &spooledPack{st: s, f: f}, nil
}

type spooledPack struct {
	st  *cappedStorage
	f   *os.File
	n   int64
	err error
}

func (w *spooledPack) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.st.limit > 0 && w.n+int64(len(p)) > w.st.limit {
		w.err = fmt.Errorf("fetch %s: the pack is larger than the limit of %s: %w", w.st.name, mib(w.st.limit), ErrTooLarge)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("fetch %s: spool pack: %w", w.st.name, err)
	}
	return n, w.err
}

// Close checks the spooled pack and, when it passes, writes it into the
// store.
func (w *spooledPack) Close() (err error) {
	defer os.Remove(w.f.Name())
	defer w.f.Close()
	if w.err != nil {
		return w.err
	}
	if w.st.limit > 0 {
		if _, err := w.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := checkPack(w.f, w.st.limit); err != nil {
			return fmt.Errorf("fetch %s: %w", w.st.name, err)
		}
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	pw, err := w.st.Storage.PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := io.Copy(pw, w.f); err != nil {
		_ = pw.Close()
		return fmt.Errorf("fetch %s: %w", w.st.name, err)
	}
	return pw.Close()
}

// checkPack reads every object of the pack in r, keeping at most a few
// bytes of each, and refuses an object (or a delta's result) larger than
// limit.
func checkPack(r io.Reader, limit int64) error {
	sc := packfile.NewScanner(r)
	_, count, err := sc.Header()
	if err != nil {
		return fmt.Errorf("read pack: %w", err)
	}
	for i := uint32(0); i < count; i++ {
		h, err := sc.NextObjectHeader()
		if err != nil {
			return fmt.Errorf("read pack object %d: %w", i, err)
		}
		if h.Length > limit {
			return fmt.Errorf("pack object %d (%s) is %s, over the limit of %s: %w", i, h.Type, mib(h.Length), mib(limit), ErrTooLarge)
		}
		var head headBytes
		if _, _, err := sc.NextObject(&head); err != nil {
			return fmt.Errorf("read pack object %d: %w", i, err)
		}
		if h.Type == plumbing.OFSDeltaObject || h.Type == plumbing.REFDeltaObject {
			// A delta starts with the sizes of its base and of its result.
			_, rest := leb128(head.b[:head.n])
			if size, _ := leb128(rest); int64(size) > limit || size > 1<<62 {
				return fmt.Errorf("pack object %d (delta) makes %s, over the limit of %s: %w", i, mib(int64(size)), mib(limit), ErrTooLarge)
			}
		}
	}
	return nil
}

// headBytes keeps the first bytes written to it and discards the rest.
type headBytes struct {
	b [32]byte
	n int
}

func (h *headBytes) Write(p []byte) (int, error) {
	h.n += copy(h.b[h.n:], p)
	return len(p), nil
}

// leb128 decodes git's delta size encoding (little-endian base 128).
func leb128(b []byte) (uint64, []byte) {
	var v uint64
	for i, c := range b {
		if i >= 10 {
			return 1 << 63, nil
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, b[i+1:]
		}
	}
	return v, nil
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
