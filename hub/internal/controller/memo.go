package controller

import (
	"context"

	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// memo remembers git answers within one reconcile, so that 1,000 clusters
// of one app cost one ref resolution, one tree lookup and one checkout.
type memo struct {
	git       *gitsource.Manager
	tracked   map[string]error
	commits   map[[2]string]result
	trees     map[[3]string]result
	checkouts map[[2]string]result
}

type result struct {
	v   string
	err error
}

func newMemo(g *gitsource.Manager) *memo {
	return &memo{git: g, tracked: map[string]error{}, commits: map[[2]string]result{}, trees: map[[3]string]result{}, checkouts: map[[2]string]result{}}
}

func (m *memo) track(ctx context.Context, repo string) error {
	if err, ok := m.tracked[repo]; ok {
		return err
	}
	err := m.git.Track(ctx, repo)
	m.tracked[repo] = err
	return err
}

func (m *memo) resolve(repo, rev string) (string, error) {
	k := [2]string{repo, rev}
	if r, ok := m.commits[k]; ok {
		return r.v, r.err
	}
	v, err := m.git.Resolve(repo, rev)
	m.commits[k] = result{v, err}
	return v, err
}

func (m *memo) tree(repo, commit, path string) (string, error) {
	k := [3]string{repo, commit, path}
	if r, ok := m.trees[k]; ok {
		return r.v, r.err
	}
	v, err := m.git.TreeID(repo, commit, path)
	m.trees[k] = result{v, err}
	return v, err
}

func (m *memo) checkout(repo, commit string) (string, error) {
	k := [2]string{repo, commit}
	if r, ok := m.checkouts[k]; ok {
		return r.v, r.err
	}
	v, err := m.git.Checkout(repo, commit)
	m.checkouts[k] = result{v, err}
	return v, err
}

// keep returns, per repo, the commits checked out in this reconcile.
func (m *memo) keep() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for k, r := range m.checkouts {
		if r.err != nil {
			continue
		}
		if out[k[0]] == nil {
			out[k[0]] = map[string]bool{}
		}
		out[k[0]][k[1]] = true
	}
	return out
}
