package bench

import (
	"context"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// oneHub is what the single-hub phases (apps, apply, selfheal, bulk, hooks)
// start from: a repo "config" with a first commit, clusters, one hub
// following the repo's app-of-apps folder (apps/defs), and an agent on the
// first cluster, enrolled with a label and connected.
type oneHub struct {
	repo     *gitserver.Repo
	rev      string // the first commit
	clusters []*cluster.ProcessCluster
	hub      *harness.Hub
	agent    *harness.Agent // on clusters[0]
}

// oneHubSpec says what startOneHub starts.
type oneHubSpec struct {
	// first returns the files of the first commit (nil: an empty app
	// folder).
	first func(repoURL string) map[string]string
	// full clusters also run controller-manager, scheduler and a kwok
	// node (Deployments become available).
	full     bool
	clusters []string
	label    string // the first cluster's, "key=value"
}

func (w *world) startOneHub(ctx context.Context, s oneHubSpec) (*oneHub, error) {
	repo, err := w.repo("config")
	if err != nil {
		return nil, err
	}
	files := map[string]string{"apps/defs/README.md": "Application definitions.\n"}
	if s.first != nil {
		files = s.first(repo.URL)
	}
	rev, _, err := commit(repo, "first commit", files)
	if err != nil {
		return nil, err
	}
	if s.full {
		w.b.logf("starting a full cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
	}
	cls, err := w.clusters(ctx, s.full, s.clusters...)
	if err != nil {
		return nil, err
	}
	hub, err := w.hub(ctx, repo, time.Hour)
	if err != nil {
		return nil, err
	}
	agent, err := w.enroll(ctx, hub, cls[0], s.label)
	if err != nil {
		return nil, err
	}
	if err := waitConnected(ctx, hub, cls[0].Name()); err != nil {
		return nil, err
	}
	return &oneHub{repo: repo, rev: rev, clusters: cls, hub: hub, agent: agent}, nil
}
