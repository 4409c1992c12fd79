package controller

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// fullResyncEvery is how many resync intervals may pass with every pass
// skipped (nothing changed) before one full pass runs anyway.
const fullResyncEvery = 10

// resyncKey is what the last clean reconcile computed from: an input that
// moved since makes the next resync a full pass (see resyncSkippable).
type resyncKey struct {
	valid bool
	// gen is the controller's generation when the pass started: every
	// in-process input (pins, capabilities, rollouts, rendered children,
	// repos' answers, jobs' results, a cluster added or relabelled through
	// this hub) moves it through Trigger.
	gen uint64
	// dir is the digest of the AppsDir files the pass loaded.
	dir string
	// clusters is the digest of the registered clusters (names, labels)
	// the pass listed from the store.
	clusters uint64
	// windows is the next time a sync window opens or closes (zero: none).
	windows time.Time
	// at is when the pass ran.
	at time.Time
}

// passInputs are the external inputs a reconcile read, recorded as it
// reads them.
type passInputs struct {
	dir      string
	clusters uint64
	windows  time.Time
}

// clusterDigest folds registered clusters (names and labels) into a digest
// that does not depend on the order of labels.
type clusterDigest struct {
	seed maphash.Seed
	h    maphash.Hash
	keys []string
}

func newClusterDigest(seed maphash.Seed) *clusterDigest {
	d := &clusterDigest{seed: seed}
	d.h.SetSeed(seed)
	return d
}

func (d *clusterDigest) add(cl store.Cluster) {
	d.h.WriteString(cl.Name)
	d.h.WriteByte(0)
	d.keys = d.keys[:0]
	for k := range cl.Labels {
		d.keys = append(d.keys, k)
	}
	slices.Sort(d.keys)
	for _, k := range d.keys {
		d.h.WriteString(k)
		d.h.WriteByte(1)
		d.h.WriteString(cl.Labels[k])
		d.h.WriteByte(2)
	}
	d.h.WriteByte(3)
}

func (d *clusterDigest) sum() uint64 { return d.h.Sum64() }

// storeClusters returns the digest of the clusters registered in the store.
func (c *Controller) storeClusters(ctx context.Context) (uint64, error) {
	d := newClusterDigest(c.seed)
	page := store.Page{Limit: store.MaxPageLimit}
	for {
		cs, next, err := c.store.ListClusters(ctx, page)
		if err != nil {
			return 0, fmt.Errorf("list clusters: %w", err)
		}
		for _, cl := range cs {
			d.add(cl)
		}
		if next == "" {
			return d.sum(), nil
		}
		page.After = next
	}
}

// resyncSkippable reports whether the resync pass due now would compute
// what the last one did, so that it can be skipped. It is not when:
//
//   - the last pass was not clean (an error, something pending, or a failed
//     job it retries),
//   - something was triggered since (generation), or
//   - a sync window opened or closed, or a rollout is active (time-driven),
//   - the files of AppsDir or the registered clusters in the store differ
//     from what the last pass read: these change without an event reaching
//     this hub (an edit in the folder, another process writing the store),
//     which is what the resync is for; they are read again here, or
//   - fullResyncEvery intervals passed since the last full pass (a
//     belt-and-braces pass for an input changed without any of the above).
//
// New commits are not looked for here: the resync still asks every repo
// worker to resolve its revisions again, and a worker whose answer moved
// triggers a pass.
func (c *Controller) resyncSkippable(ctx context.Context) bool {
	c.mu.Lock()
	k := c.resyncKey
	c.mu.Unlock()
	now := c.opts.Now()
	switch {
	case !k.valid,
		c.gen.Load() != k.gen,
		now.Sub(k.at) >= fullResyncEvery*c.opts.Resync,
		!k.windows.IsZero() && !now.Before(k.windows),
		c.jobs.retriable(),
		c.rolloutsActive():
		return false
	}
	if c.opts.AppsDir != "" {
		d, err := app.DigestDir(c.opts.AppsDir)
		if err != nil || d != k.dir {
			return false
		}
	}
	cl, err := c.storeClusters(ctx)
	return err == nil && cl == k.clusters
}
