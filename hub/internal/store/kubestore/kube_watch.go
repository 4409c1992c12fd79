package kubestore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"time"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// What hubs sharing a Kubernetes store watch to see each other's writes
// (hub/internal/ha): clusters, status pages, pins and rollouts.
var (
	ClustersResource = resCluster.gvr()
	StatusResource   = resStatus.gvr()
	PinsResource     = resPin.gvr()
	RolloutsResource = resRollout.gvr()
)

// Dynamic returns the store's dynamic client (for informers on its
// resources).
func (k *Store) Dynamic() dynamic.Interface { return k.dyn }

// ClusterOf decodes a Cluster object of the store.
func ClusterOf(o *unstructured.Unstructured) (store.Cluster, error) {
	var c store.Cluster
	err := getSpec(o, &c)
	return c, err
}

// StatusesOf decodes a ClusterStatus object: its cluster and the statuses
// it holds.
func StatusesOf(o *unstructured.Unstructured) (string, []*apiv1alpha1.AppStatus, error) {
	var sp statusPage
	if err := getSpec(o, &sp); err != nil {
		return "", nil, err
	}
	out := make([]*apiv1alpha1.AppStatus, 0, len(sp.Apps))
	for app, enc := range sp.Apps {
		data, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return "", nil, fmt.Errorf("decode status of app %s on cluster %s: %w", app, sp.Cluster, err)
		}
		st := new(apiv1alpha1.AppStatus)
		if err := proto.Unmarshal(data, st); err != nil {
			return "", nil, fmt.Errorf("decode status of app %s on cluster %s: %w", app, sp.Cluster, err)
		}
		out = append(out, st)
	}
	return sp.Cluster, out, nil
}

// Compact removes what outlived its owner: status pages and capabilities
// of clusters that no longer exist (a status written while its cluster
// was being removed), and API tokens expired for longer than grace. One
// hub runs it (the Lease holder). It returns how many objects it removed.
//
// The pages and capabilities are listed before the clusters: each list is
// a snapshot, and a page can only be written for a cluster that exists, so
// a page whose cluster is missing from the later list lost its cluster.
// Listed the other way round, a cluster enrolled between the two lists
// whose agent reported meanwhile would look orphaned and lose its status.
func (k *Store) Compact(ctx context.Context, now time.Time, grace time.Duration) (int, error) {
	if err := k.check(ctx); err != nil {
		return 0, err
	}
	type owned struct {
		r        resource
		name, rv string
		cluster  string
	}
	var candidates []owned
	for _, r := range []resource{resStatus, resCaps} {
		err := k.listSpecs(ctx, r, "", func(o *unstructured.Unstructured) error {
			var owner struct {
				Cluster string `json:"cluster"`
			}
			if err := getSpec(o, &owner); err != nil {
				return err
			}
			candidates = append(candidates, owned{r, o.GetName(), o.GetResourceVersion(), owner.Cluster})
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("compact: %w", err)
		}
	}
	clusters := map[string]bool{}
	err := k.listSpecs(ctx, resCluster, "", func(o *unstructured.Unstructured) error {
		c, err := ClusterOf(o)
		clusters[c.Name] = true
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("compact: %w", err)
	}
	removed := 0
	var errs []error
	for _, c := range candidates {
		if clusters[c.cluster] {
			continue
		}
		// Deleted only if unchanged since listed: a cluster made again
		// meanwhile keeps what it wrote.
		err := k.res(c.r).Delete(ctx, c.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &c.rv}})
		k.noteDelete(c.r, c.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	err = k.listSpecs(ctx, resToken, "", func(o *unstructured.Unstructured) error {
		var t store.APIToken
		if err := getSpec(o, &t); err != nil {
			return err
		}
		if t.ExpiresAt.IsZero() || now.Sub(t.ExpiresAt) < grace {
			return nil
		}
		if err := k.deleteAPIToken(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
			return nil
		}
		removed++
		return nil
	})
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("compact: %w", err)
	}
	return removed, nil
}
