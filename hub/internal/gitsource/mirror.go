package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ErrRevisionNotFound is returned when a branch, tag or commit does not exist.
var ErrRevisionNotFound = errors.New("revision not found")

// mirror is the bare local copy of one remote repository.
type mirror struct {
	url  string
	dir  string
	auth transport.AuthMethod

	mu      sync.Mutex // serializes fetches and reads of repo
	repo    *git.Repository
	refs    string // fingerprint of the remote refs at the last fetch
	lastErr error
}

func mirrorDir(base, url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(base, "mirrors", hex.EncodeToString(sum[:8]))
}

func openMirror(base, url string, auth transport.AuthMethod) (*mirror, error) {
	dir := mirrorDir(base, url)
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
		if err == nil {
			_, err = repo.CreateRemote(&config.RemoteConfig{
				Name:  "origin",
				URLs:  []string{url},
				Fetch: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mirror %s in %s: %w", url, dir, err)
	}
	return &mirror{url: url, dir: dir, auth: auth, repo: repo}, nil
}

// listRefs asks the remote for its refs without fetching objects and returns
// a fingerprint of them.
func (m *mirror) listRefs(ctx context.Context) (string, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{m.url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: m.auth})
	if err != nil {
		return "", fmt.Errorf("list refs of %s: %w", m.url, err)
	}
	lines := make([]string, 0, len(refs))
	for _, r := range refs {
		n := r.Name()
		if !n.IsBranch() && !n.IsTag() {
			continue
		}
		lines = append(lines, n.String()+" "+r.Hash().String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// sync lists the remote refs and fetches when they differ from the last
// fetch. It reports whether anything moved.
func (m *mirror) sync(ctx context.Context) (bool, error) {
	fp, err := m.listRefs(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.lastErr = err
		return false, err
	}
	if fp == m.refs && m.lastErr == nil {
		return false, nil
	}
	err = m.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Auth: m.auth, Force: true, Prune: true, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		m.lastErr = fmt.Errorf("fetch %s: %w", m.url, err)
		return false, m.lastErr
	}
	m.lastErr = nil
	changed := fp != m.refs
	m.refs = fp
	return changed, nil
}

// resolve turns a branch, tag or commit SHA (full or abbreviated) into a
// commit hash. An empty rev or "HEAD" means the remote's default branch.
func (m *mirror) resolve(rev string) (plumbing.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastErr != nil && m.refs == "" {
		return plumbing.ZeroHash, m.lastErr
	}
	candidates := []plumbing.ReferenceName{
		plumbing.NewBranchReferenceName(rev),
		plumbing.NewTagReferenceName(rev),
		plumbing.ReferenceName(rev),
	}
	if rev == "" || rev == "HEAD" {
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName("main"), plumbing.NewBranchReferenceName("master")}
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
				return plumbing.ZeroHash, fmt.Errorf("tag %s of %s: %w", rev, m.url, err)
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
	return plumbing.ZeroHash, fmt.Errorf("%s of %s: %w", rev, m.url, ErrRevisionNotFound)
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
func (m *mirror) treeID(commit plumbing.Hash, path string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.repo.CommitObject(commit)
	if err != nil {
		return "", fmt.Errorf("commit %s of %s: %w", commit, m.url, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return "", fmt.Errorf("commit %s of %s: %w", commit, m.url, err)
	}
	p := strings.Trim(filepath.ToSlash(filepath.Clean(path)), "/")
	if p == "" || p == "." {
		return tree.Hash.String(), nil
	}
	e, err := tree.FindEntry(p)
	if err != nil {
		return "", fmt.Errorf("path %q at %s of %s: %w", path, commit.String()[:12], m.url, err)
	}
	return e.Hash.String(), nil
}

// checkout writes the files of commit into dir (created fresh). Symlinks
// that would point outside the checkout are refused.
func (m *mirror) checkout(commit plumbing.Hash, dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.repo.CommitObject(commit)
	if err != nil {
		return fmt.Errorf("commit %s of %s: %w", commit, m.url, err)
	}
	files, err := c.Files()
	if err != nil {
		return fmt.Errorf("commit %s of %s: %w", commit, m.url, err)
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	w, err := newTreeWriter(tmp, CheckoutLimits{})
	if err != nil {
		return fmt.Errorf("checkout %s of %s: %w", commit.String()[:12], m.url, err)
	}
	err = files.ForEach(w.add)
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("checkout %s of %s: %w", commit.String()[:12], m.url, err)
	}
	return os.Rename(tmp, dir)
}
