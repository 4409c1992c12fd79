package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCapabilities checks that reported capabilities replace the previous
// ones, survive a reopen and go with their cluster.
func TestCapabilities(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := b.open(t, Options{})
		ctx := t.Context()
		for _, name := range []string{"a", "b"} {
			if err := s.CreateCluster(ctx, Cluster{Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []ClusterCapabilities{
			{Cluster: "a", KubeVersion: "v1.30.0", APIVersions: []string{"v1"}},
			{Cluster: "b", KubeVersion: "v1.31.0", APIVersions: []string{"v1", "apps/v1"}},
			{Cluster: "a", KubeVersion: "v1.30.1", APIVersions: []string{"v1", "example.com/v1"}},
		} {
			if err := s.PutCapabilities(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutCapabilities(ctx, ClusterCapabilities{}); err == nil {
			t.Error("capabilities without a cluster name accepted")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		got, err := s.ListCapabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []ClusterCapabilities{
			{Cluster: "a", KubeVersion: "v1.30.1", APIVersions: []string{"v1", "example.com/v1"}},
			{Cluster: "b", KubeVersion: "v1.31.0", APIVersions: []string{"v1", "apps/v1"}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after reopen (-want +got):\n%s", diff)
		}
		if err := s.DeleteCluster(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if got, err = s.ListCapabilities(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[1:], got); diff != "" {
			t.Errorf("after deleting cluster a (-want +got):\n%s", diff)
		}
	})
}
