package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Statuses are kept as deterministic protobuf under "cluster \0 app", so a
// cluster's statuses are one contiguous key range.

// StatusMarshal is how both stores encode a status: deterministic
// protobuf.
var StatusMarshal = proto.MarshalOptions{Deterministic: true}

func statusPrefix(cluster string) []byte { return append([]byte(cluster), 0) }

func statusKey(cluster, app string) []byte { return append(statusPrefix(cluster), app...) }

// PutStatus stores the status of st.App on cluster. Concurrent calls share
// one transaction and one fsync (bbolt's Batch), so a call may wait up to
// the batch delay. Writing a status equal to the stored one writes nothing.
// ErrNotFound if the cluster does not exist.
func (s *Bolt) PutStatus(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus) error {
	if st == nil {
		return fmt.Errorf("put status on cluster %s: nil status: %w", cluster, ErrInvalid)
	}
	if err := CheckName("app", st.GetApp()); err != nil {
		return fmt.Errorf("put status on cluster %s: %w", cluster, err)
	}
	data, err := StatusMarshal.Marshal(st)
	if err != nil {
		return fmt.Errorf("put status of app %s on cluster %s: encode: %w", st.GetApp(), cluster, err)
	}
	key := statusKey(cluster, st.GetApp())
	var missing bool
	err = s.batch(ctx, func(tx *bolt.Tx) error {
		// A missing cluster is reported through missing, not as an error:
		// an error would make Batch redo the whole shared transaction.
		missing = tx.Bucket(bucketClusters).Get([]byte(cluster)) == nil
		if missing {
			return nil
		}
		b := tx.Bucket(bucketStatus)
		if bytes.Equal(b.Get(key), data) {
			return nil
		}
		return b.Put(key, data)
	})
	if err == nil && missing {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("put status of app %s on cluster %s: %w", st.GetApp(), cluster, err)
	}
	return nil
}

// DeleteStatus deletes the status of app on cluster; deleting a missing
// status is not an error.
func (s *Bolt) DeleteStatus(ctx context.Context, cluster, app string) error {
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStatus).Delete(statusKey(cluster, app))
	})
	if err != nil {
		return fmt.Errorf("delete status of app %s on cluster %s: %w", app, cluster, err)
	}
	return nil
}

// ListStatus lists the statuses of one cluster, or of all clusters when
// cluster is "", ordered by cluster then app.
func (s *Bolt) ListStatus(ctx context.Context, cluster string) ([]StatusRecord, error) {
	var out []StatusRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var prefix []byte
		if cluster != "" {
			prefix = statusPrefix(cluster)
		}
		c := tx.Bucket(bucketStatus).Cursor()
		k, v := c.First()
		if prefix != nil {
			k, v = c.Seek(prefix)
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			cl, app, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("malformed status key %q", k)
			}
			st := new(apiv1alpha1.AppStatus)
			if err := proto.Unmarshal(v, st); err != nil {
				return fmt.Errorf("decode status of app %s on cluster %s: %w", app, cl, err)
			}
			out = append(out, StatusRecord{Cluster: string(cl), Status: st})
		}
		return nil
	})
	if err != nil {
		if cluster == "" {
			return nil, fmt.Errorf("list statuses: %w", err)
		}
		return nil, fmt.Errorf("list statuses of cluster %s: %w", cluster, err)
	}
	return out, nil
}
