package gitsource

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/memory"
)

// A fetch by go-git asks for the remote's ref advertisement (over smart
// HTTP: GET info/refs) and then for the pack (POST git-upload-pack). On
// http(s), the hub saves one of these requests (each a process start-up on
// a `git http-backend` server) where it already knows what to ask for:
//   - a timer poll lists the refs first to see whether anything moved; when
//     something did, the objects the mirror lacks are asked for with one
//     POST, without advertising the refs again;
//   - a webhook that names its commit asks for that commit (one POST) while
//     it lists the refs (one GET), both at once.
// Either way the mirror's refs are then set to the listing, never to the
// webhook's commit: what the hub deploys is what the remote's refs hold.
// Anything unexpected (ssh, a server that refuses a POST without its
// advertisement, an object still missing) falls back to a plain fetch.

// listing is what the remote advertised: its branches and tags (peeled
// entries left out, as a fetch stores none), the branch HEAD points at,
// and their fingerprint.
type listing struct {
	refs []*plumbing.Reference
	head plumbing.ReferenceName
	fp   string
}

// list asks the remote for its refs without fetching objects. It gives up
// after the list timeout.
func (m *mirror) list(ctx context.Context) (listing, error) {
	auth, err := m.net.auth()
	if err != nil {
		return listing{}, fmt.Errorf("list refs of %s: %w", m.name, err)
	}
	ctx, cancel := context.WithTimeout(withReadCap(ctx, m.net.maxBytes), m.net.listTimeout)
	defer cancel()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{m.url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth, CABundle: m.net.caBundle, ProxyOptions: sshProxy(ctx, m.url, m.net.maxBytes)})
	if err != nil {
		return listing{}, fmt.Errorf("list refs of %s: %w", m.name, scrub(m.url, deadlineErr(ctx, m.net.listTimeout, err)))
	}
	var l listing
	lines := make([]string, 0, len(refs))
	for _, r := range refs {
		n := r.Name()
		if n == plumbing.HEAD && r.Type() == plumbing.SymbolicReference && r.Target().IsBranch() {
			l.head = r.Target()
			lines = append(lines, "HEAD -> "+l.head.String())
			continue
		}
		if !n.IsBranch() && !n.IsTag() || strings.HasSuffix(n.String(), "^{}") || r.Type() != plumbing.HashReference {
			continue
		}
		l.refs = append(l.refs, r)
		lines = append(lines, n.String()+" "+r.Hash().String())
	}
	sort.Strings(lines)
	l.fp = strings.Join(lines, "\n")
	return l, nil
}

// overHTTP reports whether the remote is fetched over http(s).
func (m *mirror) overHTTP() bool {
	loc, err := parseLocation(m.url)
	return err == nil && (loc.scheme == "http" || loc.scheme == "https")
}

// uploadPack asks the remote for wants (and what they need that the
// mirror's branches and tags do not reach) with one request, without its
// ref advertisement first, and writes the pack into the store (through the
// size check). Call with mu held.
func (m *mirror) uploadPack(ctx context.Context, wants []plumbing.Hash) (err error) {
	if len(wants) == 0 {
		return nil
	}
	auth, err := m.net.auth()
	if err != nil {
		return err
	}
	ep, err := transport.NewEndpoint(m.url)
	if err != nil {
		return err
	}
	ep.CaBundle = m.net.caBundle
	cl, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	s, err := cl.NewUploadPackSession(ep, auth)
	if err != nil {
		return err
	}
	defer s.Close()
	req := packp.NewUploadPackRequest()
	for _, c := range []capability.Capability{capability.OFSDelta, capability.Sideband64k, capability.NoProgress} {
		if err := req.Capabilities.Set(c); err != nil {
			return err
		}
	}
	if err := req.Capabilities.Set(capability.Agent, capability.DefaultAgent()); err != nil {
		return err
	}
	req.Wants = wants
	req.Haves, err = m.localTips()
	if err != nil {
		return err
	}
	res, err := s.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := res.Close(); err == nil {
			err = cerr
		}
	}()
	return packfile.UpdateObjectStorage(m.repo.Storer, sideband.NewDemuxer(sideband.Sideband64k, res))
}

// localTips returns the hashes of the mirror's branches and tags. Call
// with mu held.
func (m *mirror) localTips() ([]plumbing.Hash, error) {
	iter, err := m.repo.References()
	if err != nil {
		return nil, err
	}
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && (r.Name().IsBranch() || r.Name().IsTag()) && !seen[r.Hash()] {
			seen[r.Hash()] = true
			out = append(out, r.Hash())
		}
		return nil
	})
	return out, err
}

// missing returns the hashes of l's refs whose objects the mirror lacks.
// Call with mu held.
func (m *mirror) missing(l listing) []plumbing.Hash {
	var out []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	for _, r := range l.refs {
		h := r.Hash()
		if !seen[h] && m.repo.Storer.HasEncodedObject(h) != nil {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// setRefs makes the mirror's branches and tags those of l, as a forced
// fetch with pruning does. Every object of l must be in the store. Call
// with mu held.
func (m *mirror) setRefs(l listing) error {
	want := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, r := range l.refs {
		want[r.Name()] = r.Hash()
	}
	iter, err := m.repo.References()
	if err != nil {
		return err
	}
	var stale []plumbing.ReferenceName
	have := map[plumbing.ReferenceName]plumbing.Hash{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if n := r.Name(); n.IsBranch() || n.IsTag() {
			if _, ok := want[n]; !ok {
				stale = append(stale, n)
			} else if r.Type() == plumbing.HashReference {
				have[n] = r.Hash()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range stale {
		if err := m.repo.Storer.RemoveReference(n); err != nil {
			return err
		}
	}
	for n, h := range want {
		if cur, ok := have[n]; ok && cur == h {
			continue
		}
		if err := m.repo.Storer.SetReference(plumbing.NewHashReference(n, h)); err != nil {
			return err
		}
	}
	return nil
}

// fetchListed brings the mirror to listing l: over http(s), the objects it
// lacks come with one request and the refs are set to l; otherwise, or when
// that fails short of the size limit, by a plain fetch (which advertises
// the refs again). It returns the fingerprint of the refs the mirror then
// holds. Call with mu held; fctx carries the fetch deadline and read cap.
func (m *mirror) fetchListed(fctx context.Context, l listing) (string, error) {
	if m.overHTTP() {
		err := m.uploadPack(fctx, m.missing(l))
		if errors.Is(err, ErrTooLarge) || fctx.Err() != nil {
			return "", err
		}
		if err == nil && len(m.missing(l)) == 0 {
			if err := m.setRefs(l); err != nil {
				return "", err
			}
			return l.fp, nil
		}
	}
	auth, err := m.net.auth()
	if err != nil {
		return "", err
	}
	err = m.repo.FetchContext(fctx, &git.FetchOptions{RemoteName: "origin", Auth: auth, CABundle: m.net.caBundle, ProxyOptions: sshProxy(fctx, m.url, m.net.wireMax()), Force: true, Prune: true, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", err
	}
	return m.localFingerprint(l.head)
}
