package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// ErrRevisionNotFound is returned when a branch, tag or commit does not exist.
var ErrRevisionNotFound = errors.New("revision not found")

// mirror is the bare local copy of one remote repository.
type mirror struct {
	url  string // as configured, credentials included: only for go-git
	name string // url redacted: for errors and logs
	dir  string
	net  netOptions

	mu   sync.Mutex // serializes fetches and reads of repo
	repo *git.Repository

	// state is never held across network calls: while a fetch holds mu,
	// readers are answered from the last good resolutions (revs, trees).
	state sync.Mutex
	refs  string // fingerprint of the remote refs at the last fetch
	// head is the branch the remote's HEAD points at (its default
	// branch), as it advertised it at the last fetch ("" if it did not).
	head    plumbing.ReferenceName
	lastErr error
	gen     int                      // bumped when a fetch moved the refs
	revs    map[string]plumbing.Hash // rev → commit, since the last fetch
	trees   map[[2]string]string     // (commit, path) → tree id (immutable)
}

// status returns the refs fingerprint of the last fetch and the last error.
func (m *mirror) status() (string, error) {
	m.state.Lock()
	defer m.state.Unlock()
	return m.refs, m.lastErr
}

func (m *mirror) setErr(err error) error {
	m.state.Lock()
	defer m.state.Unlock()
	m.lastErr = err
	return err
}

// netOptions are what every network operation of a mirror needs.
type netOptions struct {
	auth         func() (transport.AuthMethod, error)
	caBundle     []byte
	listTimeout  time.Duration
	fetchTimeout time.Duration
	maxBytes     int64 // 0: no limit
}

// wireMax is the cap on the bytes of a fetch on the wire: the pack limit plus room
// for the protocol framing and the refs.
func (n netOptions) wireMax() int64 {
	if n.maxBytes == 0 {
		return 0
	}
	return n.maxBytes + n.maxBytes/8 + 1<<20
}

func mirrorDir(base, url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(base, "mirrors", hex.EncodeToString(sum[:8]))
}

func openMirror(base, url string, net netOptions, maxFetch int64) (*mirror, error) {
	dir := mirrorDir(base, url)
	name := Redact(url)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mirror %s in %s: %w", name, dir, err)
	}
	st := &cappedStorage{Storage: filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault()), name: name, dir: dir, limit: maxFetch}
	repo, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(st, nil)
		if err == nil {
			_, err = repo.CreateRemote(&config.RemoteConfig{
				Name:  "origin",
				URLs:  []string{url},
				Fetch: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mirror %s in %s: %w", name, dir, scrub(url, err))
	}
	return &mirror{url: url, name: name, dir: dir, net: net, repo: repo}, nil
}

// deadlineErr names the deadline when ctx ran out during an operation.
func deadlineErr(ctx context.Context, d time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || timedOut(err) {
		return fmt.Errorf("no answer within %s: %w", d, errors.Join(context.DeadlineExceeded, err))
	}
	return err
}

// listRefs asks the remote for its refs without fetching objects and returns
// a fingerprint of them and the branch its HEAD points at. It gives up
// after the list timeout.
func (m *mirror) listRefs(ctx context.Context) (string, plumbing.ReferenceName, error) {
	l, err := m.list(ctx)
	return l.fp, l.head, err
}

// sync lists the remote refs and fetches when they differ from the last
// fetch (fetchListed: over http(s) without advertising the refs again). It
// reports whether anything moved. A fetch that fails (deadline, size limit)
// leaves the mirror at its last good state.
func (m *mirror) sync(ctx context.Context) (bool, error) {
	l, err := m.list(ctx)
	if err != nil {
		return false, m.setErr(err)
	}
	if refs, lastErr := m.status(); l.fp == refs && lastErr == nil {
		return false, nil
	}
	fctx, cancel := context.WithTimeout(withReadCap(ctx, m.net.wireMax()), m.net.fetchTimeout)
	defer cancel()
	m.mu.Lock()
	_, err = m.fetchListed(fctx, l)
	m.mu.Unlock()
	if err != nil {
		return false, m.setErr(fmt.Errorf("fetch %s: %w", m.name, scrub(m.url, deadlineErr(fctx, m.net.fetchTimeout, err))))
	}
	m.state.Lock()
	defer m.state.Unlock()
	m.lastErr = nil
	changed := l.fp != m.refs
	m.refs, m.head = l.fp, l.head
	if changed {
		m.gen++
		m.revs = nil
	}
	return changed, nil
}

// resolve turns a branch, tag or commit SHA (full or abbreviated) into a
// commit hash. An empty rev or "HEAD" means the remote's default branch:
// the branch its HEAD points at, or main, then master, when a remote does
// not say.
// While a fetch is running, a rev resolved since the previous fetch is
// answered from memory: a slow remote never holds up readers.
func (m *mirror) resolve(rev string) (plumbing.Hash, error) {
	m.state.Lock()
	gen := m.gen
	h, cached := m.revs[rev]
	m.state.Unlock()
	if !m.mu.TryLock() {
		if cached {
			return h, nil
		}
		m.mu.Lock()
	}
	h, err := m.resolveLocked(rev)
	m.mu.Unlock()
	if err == nil {
		m.state.Lock()
		if m.gen == gen {
			if m.revs == nil {
				m.revs = map[string]plumbing.Hash{}
			}
			m.revs[rev] = h
		}
		m.state.Unlock()
	}
	return h, err
}

func (m *mirror) resolveLocked(rev string) (plumbing.Hash, error) {
	if refs, lastErr := m.status(); lastErr != nil && refs == "" {
		return plumbing.ZeroHash, lastErr
	}
	candidates := []plumbing.ReferenceName{
		plumbing.NewBranchReferenceName(rev),
		plumbing.NewTagReferenceName(rev),
		plumbing.ReferenceName(rev),
	}
	if rev == "" || rev == "HEAD" {
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName("main"), plumbing.NewBranchReferenceName("master")}
		m.state.Lock()
		if m.head != "" {
			candidates = []plumbing.ReferenceName{m.head}
		}
		m.state.Unlock()
	}
	for _, name := range candidates {
		ref, err := m.repo.Reference(name, true)
		if err != nil {
			continue
		}
		h := ref.Hash()
		// An annotated tag points at a tag object; peel it to the commit.
		if tag, err := m.repo.TagObject(h); err == nil {
			c, err := tag.Commit()
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("tag %s of %s: %w", rev, m.name, err)
			}
			h = c.Hash
		}
		return h, nil
	}
	if plumbing.IsHash(rev) || (len(rev) >= 7 && len(rev) < 40 && isHex(rev)) {
		h, err := m.repo.ResolveRevision(plumbing.Revision(rev))
		if err == nil {
			if _, err := m.repo.CommitObject(*h); err == nil {
				return *h, nil
			}
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("%s of %s: %w", rev, m.name, ErrRevisionNotFound)
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// treeID returns the hash of the tree at path in commit, or the commit hash
// itself when path is the root. A missing path is an error naming it.
// Answers are kept (a commit's trees never change), so that they are served
// while a fetch holds the repo.
func (m *mirror) treeID(commit plumbing.Hash, path string) (string, error) {
	key := [2]string{commit.String(), path}
	m.state.Lock()
	id, cached := m.trees[key]
	m.state.Unlock()
	if cached {
		return id, nil
	}
	m.mu.Lock()
	id, err := m.treeIDLocked(commit, path)
	m.mu.Unlock()
	if err == nil {
		m.state.Lock()
		if m.trees == nil || len(m.trees) > 10000 {
			m.trees = map[[2]string]string{}
		}
		m.trees[key] = id
		m.state.Unlock()
	}
	return id, err
}

func (m *mirror) treeIDLocked(commit plumbing.Hash, path string) (string, error) {
	c, err := m.repo.CommitObject(commit)
	if err != nil {
		return "", fmt.Errorf("commit %s of %s: %w", commit, m.name, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return "", fmt.Errorf("commit %s of %s: %w", commit, m.name, err)
	}
	p := strings.Trim(filepath.ToSlash(filepath.Clean(path)), "/")
	if p == "" || p == "." {
		return tree.Hash.String(), nil
	}
	e, err := tree.FindEntry(p)
	if err != nil {
		return "", fmt.Errorf("path %q at %s of %s: %w", path, commit.String()[:12], m.name, err)
	}
	return e.Hash.String(), nil
}

// checkout writes the files of commit into dir (created fresh). Symlinks
// that would point outside the checkout are refused.
func (m *mirror) checkout(commit plumbing.Hash, dir string, limits CheckoutLimits) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.repo.CommitObject(commit)
	if err != nil {
		return fmt.Errorf("commit %s of %s: %w", commit, m.name, err)
	}
	files, err := c.Files()
	if err != nil {
		return fmt.Errorf("commit %s of %s: %w", commit, m.name, err)
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	w, err := newTreeWriter(tmp, limits)
	if err != nil {
		return fmt.Errorf("checkout %s of %s: %w", commit.String()[:12], m.name, err)
	}
	err = files.ForEach(w.add)
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("checkout %s of %s: %w", commit.String()[:12], m.name, err)
	}
	return os.Rename(tmp, dir)
}
