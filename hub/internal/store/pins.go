package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

func pinKey(app, cluster string) []byte { return joinKey([]byte(app), []byte(cluster)) }

// PutPin implements Store.
func (s *Bolt) PutPin(ctx context.Context, p Pin) error {
	if err := CheckName("app", p.App); err != nil {
		return err
	}
	if p.Revision == "" {
		return fmt.Errorf("pin of %s: empty revision: %w", p.App, ErrInvalid)
	}
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPins).Put(pinKey(p.App, p.Cluster), v)
	})
}

// DeletePins implements Store.
func (s *Bolt) DeletePins(ctx context.Context, app, cluster string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPins)
		if cluster != "" {
			return b.Delete(pinKey(app, cluster))
		}
		prefix := append([]byte(app), 0)
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListPins implements Store.
func (s *Bolt) ListPins(ctx context.Context) ([]Pin, error) {
	var out []Pin
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPins).ForEach(func(_, v []byte) error {
			var p Pin
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}
