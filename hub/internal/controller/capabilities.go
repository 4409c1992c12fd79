package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// errNoCapabilities is returned by a render job of a Helm chart for a
// cluster whose agent has not reported its capabilities.
var errNoCapabilities = errors.New("the cluster has not reported its API versions")

// capabilitiesWaitingError is the condition of a Helm app on a cluster
// that has not reported its capabilities yet (not connected yet, or an
// agent too old to report them). It is not pending work: nothing the hub
// does will end it.
type capabilitiesWaitingError struct{ cluster string }

func (e capabilitiesWaitingError) Error() string {
	return fmt.Sprintf("waiting for cluster %s to report its API versions (Helm charts render with the cluster's Kubernetes version and APIs; an agent that does not report them must be upgraded)", e.cluster)
}

func (e capabilitiesWaitingError) Unwrap() error { return errNoCapabilities }

// SetCapabilities records what cluster's agent reported about its API
// server: Helm charts for that cluster render with it from now on. The set
// is kept in the store (a restarted hub renders at once with it); a set
// equal to the last one costs nothing. It returns an error when the set is
// invalid or cannot be stored (it is used anyway until the hub restarts).
func (c *Controller) SetCapabilities(ctx context.Context, cluster, kubeVersion string, apiVersions []string) error {
	rc, err := renderspec.NewCapabilities(kubeVersion, apiVersions)
	if err != nil {
		return fmt.Errorf("capabilities of cluster %s: %w", cluster, err)
	}
	c.mu.Lock()
	prev := c.caps[cluster]
	same := prev != nil && prev.Digest() == rc.Digest()
	if !same {
		c.caps[cluster] = c.internCapabilities(rc)
		c.dropUnusedSet(prev)
	}
	c.mu.Unlock()
	if same {
		return nil
	}
	c.log.Info("cluster capabilities changed", "cluster", cluster, "kube_version", kubeVersion, "api_versions", len(rc.APIVersions))
	c.Trigger()
	return c.store.PutCapabilities(ctx, store.ClusterCapabilities{
		Cluster: cluster, KubeVersion: rc.KubeVersion, APIVersions: rc.APIVersions, ReportedAt: time.Now(),
	})
}

// internCapabilities returns the one shared copy of rc's set: clusters
// with the same set (a fleet has few distinct ones) share its memory.
// c.mu is held.
func (c *Controller) internCapabilities(rc *renderspec.Capabilities) *renderspec.Capabilities {
	if shared, ok := c.capSets[rc.Digest()]; ok {
		return shared
	}
	c.capSets[rc.Digest()] = rc
	return rc
}

// dropUnusedSet forgets the shared set prev when no cluster has it any
// more. c.mu is held.
func (c *Controller) dropUnusedSet(prev *renderspec.Capabilities) {
	if prev == nil {
		return
	}
	for _, cc := range c.caps {
		if cc == prev {
			return
		}
	}
	delete(c.capSets, prev.Digest())
}

// capabilitiesOf returns what cluster last reported, or nil.
func (c *Controller) capabilitiesOf(cluster string) *renderspec.Capabilities {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps[cluster]
}
