package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CreateCluster stores a new cluster; ErrConflict if the name is taken.
func (s *Bolt) CreateCluster(ctx context.Context, c Cluster) error {
	if err := CheckName("cluster", c.Name); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketClusters)
		if b.Get([]byte(c.Name)) != nil {
			return ErrConflict
		}
		return putJSON(b, []byte(c.Name), c)
	})
	if err != nil {
		return fmt.Errorf("create cluster %s: %w", c.Name, err)
	}
	return nil
}

// PutCluster creates or replaces a cluster.
func (s *Bolt) PutCluster(ctx context.Context, c Cluster) error {
	if err := CheckName("cluster", c.Name); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketClusters), []byte(c.Name), c)
	})
	if err != nil {
		return fmt.Errorf("put cluster %s: %w", c.Name, err)
	}
	return nil
}

// GetCluster returns the named cluster or ErrNotFound.
func (s *Bolt) GetCluster(ctx context.Context, name string) (Cluster, error) {
	var c Cluster
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		c, err = getCluster(tx, name)
		return err
	})
	if err != nil {
		return Cluster{}, fmt.Errorf("get cluster %s: %w", name, err)
	}
	return c, nil
}

func getCluster(tx *bolt.Tx, name string) (Cluster, error) {
	v := tx.Bucket(bucketClusters).Get([]byte(name))
	if v == nil {
		return Cluster{}, ErrNotFound
	}
	var c Cluster
	if err := json.Unmarshal(v, &c); err != nil {
		return Cluster{}, fmt.Errorf("decode: %w", err)
	}
	return c, nil
}

// ListClusters lists clusters in name order.
func (s *Bolt) ListClusters(ctx context.Context, p Page) ([]Cluster, string, error) {
	var (
		out  []Cluster
		next string
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		next, err = forwardPage(tx.Bucket(bucketClusters), p, func(k, v []byte) error {
			var c Cluster
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode cluster %s: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list clusters: %w", err)
	}
	return out, next, nil
}

// DeleteCluster deletes the cluster, its join token, its capabilities and
// its statuses;
// ErrNotFound if it does not exist. Its sync history stays.
func (s *Bolt) DeleteCluster(ctx context.Context, name string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		key := []byte(name)
		clusters := tx.Bucket(bucketClusters)
		if clusters.Get(key) == nil {
			return ErrNotFound
		}
		if err := clusters.Delete(key); err != nil {
			return err
		}
		if err := tx.Bucket(bucketJoinTokens).Delete(key); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCaps).Delete(key); err != nil {
			return err
		}
		return deletePrefix(tx.Bucket(bucketStatus), statusPrefix(name))
	})
	if err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	return nil
}

// UpdateCluster reads the cluster, calls fn and writes the result in one
// transaction; ErrNotFound if it does not exist, ErrConflict if fn changed
// the name. An error from fn aborts without writing and is returned wrapped.
func (s *Bolt) UpdateCluster(ctx context.Context, name string, fn func(*Cluster) error) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		c, err := getCluster(tx, name)
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		if c.Name != name {
			return fmt.Errorf("rename to %q: %w", c.Name, ErrConflict)
		}
		return putJSON(tx.Bucket(bucketClusters), []byte(name), c)
	})
	if err != nil {
		return fmt.Errorf("update cluster %s: %w", name, err)
	}
	return nil
}

// TouchCluster sets LastSeen and AgentVersion of the named cluster. It uses
// bbolt's Batch: concurrent callers share one transaction and one fsync,
// at the price of waiting up to Options.MaxBatchDelay.
func (s *Bolt) TouchCluster(ctx context.Context, name string, seen time.Time, agentVersion string) error {
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		c, err := getCluster(tx, name)
		if err != nil {
			return err
		}
		c.LastSeen, c.AgentVersion = seen, agentVersion
		return putJSON(tx.Bucket(bucketClusters), []byte(name), c)
	})
	if err != nil {
		return fmt.Errorf("touch cluster %s: %w", name, err)
	}
	return nil
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
