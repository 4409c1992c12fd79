package gitsource

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// Push is what a push webhook says moved: a branch or tag (full name,
// "refs/heads/main") and the commit it names after the push.
type Push struct {
	Ref   string
	After string
}

// valid reports whether p names a branch or tag and a full commit id other
// than the zero id (a deletion).
func (p Push) valid() bool {
	n := plumbing.ReferenceName(p.Ref)
	return (n.IsBranch() || n.IsTag()) && plumbing.IsHash(p.After) && plumbing.NewHash(p.After) != plumbing.ZeroHash
}

// maxPushes bounds the pushes kept per repo between two polls; more are
// served as plain refreshes.
const maxPushes = 64

// RefreshPush is Refresh for a webhook that names the pushed commit. When
// the mirror does not hold that commit on that ref yet, the poll fetches at
// once, without listing the refs first and without waiting for the refresh
// interval. What the hub deploys is still what the remote's ref holds at
// the fetch, never p.After itself: a forged or stale After only costs one
// fetch (and the next hint of the repo is then held as Refresh is). An
// invalid Push is a plain Refresh.
func (m *Manager) RefreshPush(repoURL string, p Push) bool {
	if !p.valid() {
		return m.Refresh(repoURL)
	}
	m.mu.Lock()
	for url := range m.kick {
		if SameRepo(url, repoURL) && len(m.pushes[url]) < maxPushes {
			m.pushes[url] = append(m.pushes[url], p)
		}
	}
	m.mu.Unlock()
	return m.Refresh(repoURL)
}

// takePushes returns and forgets the pushes announced for repoURL.
func (m *Manager) takePushes(repoURL string) []Push {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.pushes[repoURL]
	delete(m.pushes, repoURL)
	return ps
}

// news keeps the pushes whose commit the mirror's ref does not hold yet.
func (m *mirror) news(ps []Push) []Push {
	var out []Push
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		ref, err := m.repo.Reference(plumbing.ReferenceName(p.Ref), false)
		if err != nil || ref.Hash().String() != p.After {
			out = append(out, p)
		}
	}
	return out
}

// fetchPushed brings the mirror to the remote's refs after pushes: over
// http(s) it asks for the pushed commits and lists the refs at once (two
// requests side by side), then sets the refs to the listing, fetching what
// it still lacks (fetchListed); otherwise it fetches every branch and tag
// without listing first (the fetch's own ref advertisement says what
// moved) and takes the fingerprint from the refs it wrote. It reports
// whether anything moved and whether every push's commit arrived (false: a
// push named a commit the remote does not have: forged, or of a ref
// deleted since).
func (m *mirror) fetchPushed(ctx context.Context, ps []Push) (changed, known bool, err error) {
	auth, err := m.net.auth()
	if err != nil {
		return false, false, m.setErr(fmt.Errorf("fetch %s: %w", m.name, err))
	}
	fctx, cancel := context.WithTimeout(withReadCap(ctx, m.net.wireMax()), m.net.fetchTimeout)
	defer cancel()
	var fp string
	var head plumbing.ReferenceName
	overHTTP := m.overHTTP()
	if overHTTP {
		fp, head, err = m.fetchPushedHTTP(ctx, fctx, ps)
	} else {
		m.state.Lock()
		head = m.head
		m.state.Unlock()
		m.mu.Lock()
		err = m.repo.FetchContext(fctx, &git.FetchOptions{RemoteName: "origin", Auth: auth, CABundle: m.net.caBundle, ProxyOptions: sshProxy(fctx, m.url, m.net.wireMax()), Force: true, Prune: true, Tags: git.NoTags})
		if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
			fp, err = m.localFingerprint(head)
		}
		m.mu.Unlock()
	}
	if err != nil {
		return false, false, m.setErr(fmt.Errorf("fetch %s: %w", m.name, scrub(m.url, deadlineErr(fctx, m.net.fetchTimeout, err))))
	}
	known = true
	m.mu.Lock()
	for _, p := range ps {
		if _, cerr := m.repo.CommitObject(plumbing.NewHash(p.After)); cerr != nil {
			known = false
		}
	}
	m.mu.Unlock()
	m.state.Lock()
	defer m.state.Unlock()
	m.lastErr = nil
	changed = fp != m.refs
	m.refs = fp
	if overHTTP {
		m.head = head
	}
	if changed {
		m.gen++
		m.revs = nil
	}
	return changed, known, nil
}

// fetchPushedHTTP is fetchPushed over http(s): the pushed commits are asked
// for (one POST, no advertisement) while the refs are listed (one GET);
// then fetchListed sets the refs to the listing (a commit the remote does
// not have, or any other refusal of the POST, only means fetchListed asks
// again). It returns the fingerprint and HEAD's branch of the listing.
func (m *mirror) fetchPushedHTTP(ctx, fctx context.Context, ps []Push) (string, plumbing.ReferenceName, error) {
	type listed struct {
		l   listing
		err error
	}
	lc := make(chan listed, 1)
	go func() {
		l, err := m.list(ctx)
		lc <- listed{l, err}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	var wants []plumbing.Hash
	for _, p := range ps {
		h := plumbing.NewHash(p.After)
		if m.repo.Storer.HasEncodedObject(h) != nil && !slices.Contains(wants, h) {
			wants = append(wants, h)
		}
	}
	perr := m.uploadPack(fctx, wants)
	r := <-lc
	if r.err != nil {
		return "", "", r.err
	}
	if errors.Is(perr, ErrTooLarge) {
		return "", "", perr
	}
	fp, err := m.fetchListed(fctx, r.l)
	return fp, r.l.head, err
}

// localFingerprint is listRefs's fingerprint computed from the mirror's own
// branches and tags (as a fetch with pruning left them) and head, the
// remote's default branch at the last listing. Call with mu held.
func (m *mirror) localFingerprint(head plumbing.ReferenceName) (string, error) {
	iter, err := m.repo.References()
	if err != nil {
		return "", err
	}
	var lines []string
	if head != "" {
		lines = append(lines, "HEAD -> "+head.String())
	}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && (r.Name().IsBranch() || r.Name().IsTag()) {
			lines = append(lines, r.Name().String()+" "+r.Hash().String())
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n"), err
}
