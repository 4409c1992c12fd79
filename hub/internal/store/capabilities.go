package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutCapabilities implements Store. The cluster need not be registered
// (an agent of a removed cluster is refused before it gets here).
func (s *Bolt) PutCapabilities(ctx context.Context, c ClusterCapabilities) error {
	if err := CheckName("cluster", c.Cluster); err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCaps).Put([]byte(c.Cluster), v)
	})
	if err != nil {
		return fmt.Errorf("capabilities of cluster %s: %w", c.Cluster, err)
	}
	return nil
}

// ListCapabilities implements Store.
func (s *Bolt) ListCapabilities(ctx context.Context) ([]ClusterCapabilities, error) {
	var out []ClusterCapabilities
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCaps).ForEach(func(k, v []byte) error {
			var c ClusterCapabilities
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("capabilities of cluster %s: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}
