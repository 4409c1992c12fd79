package controller

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
)

// Kustomize remote bases (Options.KustomizeRemoteBases) are git
// repositories like any source: each is a repo worker (the hub's mirror,
// credential templates, deadlines and size limits), its ref resolved on
// every poll, its checkout kept while in use. Which bases a kustomization
// uses is only known by reading it, and the bases it reaches through
// another base only by reading that base's checkout: the render job
// discovers them (renderspec.KustomizeRemoteBases), asking the repo workers
// without waiting, and records the list per source commit. A job that
// meets a base whose ref has no answer yet ends pending; the worker's
// answer triggers the next reconcile, whose job key holds the commits of
// every base on the list: a base's branch that moves is a new job, a new
// render and a new bundle.

// errRemotePending ends a render job that met a remote base whose
// repository has not answered yet.
var errRemotePending = errors.New("waiting for the repositories of remote bases")

// remoteListKey names the source (its repository, commit and settings)
// a list of remote bases was discovered for.
func remoteListKey(src app.Source, commit string) string {
	return src.RepoURL + "\x00" + commit + "\x00" + jobKey(&app.Application{}, []app.Source{src}, nil, nil, nil)
}

// remoteCommits returns, for the sources of one target, the commits of
// the remote bases last discovered for them ("key=commit", sorted), for
// the job key (a base's repository error too: the job reports it, naming
// the kustomization and the entry). waiting is true while a base's
// repository has not answered. Their repositories and commits are
// recorded in u.
func (c *Controller) remoteCommits(appName string, srcs []app.Source, commits []string, u *usage) (out []string, waiting bool) {
	if !c.opts.KustomizeRemoteBases {
		return nil, false
	}
	var repos []string
	for i, src := range srcs {
		if src.IsChart() || !mayBeKustomize(src) {
			continue
		}
		c.mu.Lock()
		list, ok := c.remoteLists[remoteListKey(src, commits[i])]
		c.mu.Unlock()
		if !ok {
			out = append(out, fmt.Sprintf("%d=undiscovered", i))
			continue
		}
		for _, b := range list {
			if err := c.checkRemoteRepo(appName, b.RepoURL); err != nil {
				out = append(out, b.Key()+"=refused") // the job says why, naming the entry
				continue
			}
			repos = append(repos, b.RepoURL)
			commit, cerr, known := c.repos.commit(b.RepoURL, b.Ref)
			switch {
			case !known:
				u.unknown[b.RepoURL] = true
				waiting = true
			case cerr != nil:
				// The job names the kustomization and the entry.
				out = append(out, b.Key()+"=error:"+cerr.Error())
			default:
				u.commit(b.RepoURL, commit)
				out = append(out, b.Key()+"="+commit)
			}
		}
	}
	slices.Sort(repos)
	c.mu.Lock()
	c.remoteRepos[appName] = slices.Compact(repos)
	c.mu.Unlock()
	slices.Sort(out)
	return out, waiting
}

// remoteBases discovers the remote bases of src (checked out at root at
// commit) of app appName, checks each out, and records the list. A base
// whose repository the app's project does not allow is refused before
// anything is fetched. It returns nil when
// src has none, errRemotePending (wrapped, naming the entry) when a base's
// repository has not answered yet.
func (c *Controller) remoteBases(appName, root string, src app.Source, commit string) (*renderspec.RemoteBases, error) {
	rb := &renderspec.RemoteBases{Checkouts: map[string]renderspec.RemoteCheckout{}}
	lookup := func(b renderspec.RemoteBase) (string, error) {
		if co, ok := rb.Checkouts[b.Key()]; ok {
			return co.Dir, nil
		}
		if err := c.checkRemoteRepo(appName, b.RepoURL); err != nil {
			return "", fmt.Errorf("%w: %w", renderspec.ErrRemoteBase, err)
		}
		commit, err, known := c.repos.commit(b.RepoURL, b.Ref)
		if !known {
			return "", errRemotePending
		}
		if err != nil {
			return "", fmt.Errorf("%w: %w", renderspec.ErrRemoteBase, err)
		}
		dir, err := c.git.Checkout(b.RepoURL, commit)
		if err != nil {
			return "", fmt.Errorf("%w: %w", renderspec.ErrRemoteBase, err)
		}
		rb.Checkouts[b.Key()] = renderspec.RemoteCheckout{Dir: dir, Commit: commit}
		return dir, nil
	}
	bases, err := c.renderer.KustomizeRemoteBases(root, src, lookup)
	c.mu.Lock()
	if len(c.remoteLists) > 4096 {
		clear(c.remoteLists)
	}
	c.remoteLists[remoteListKey(src, commit)] = bases
	c.mu.Unlock()
	if err != nil {
		if errors.Is(err, errRemotePending) {
			return nil, errRemotePending
		}
		return nil, err
	}
	if len(bases) == 0 {
		return nil, nil
	}
	return rb, nil
}

// RemoteBaseRepos returns the repositories of the remote bases the app's
// kustomizations use (as last discovered), for an app refresh to poll.
func (c *Controller) RemoteBaseRepos(appName string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.remoteRepos[appName])
}

// remoteKeyPart is the remote bases' part of a job key.
func remoteKeyPart(commits []string) string { return strings.Join(commits, ",") }

// checkRemoteRepo holds a remote base's repository to the app's project
// (spec.sourceRepos), as its sources are.
func (c *Controller) checkRemoteRepo(appName, repoURL string) error {
	c.mu.Lock()
	pol := c.appPolicy[appName]
	c.mu.Unlock()
	if pol == nil {
		return nil
	}
	return pol.CheckRepo(repoURL)
}
