package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutRollout implements Store.
func (s *Bolt) PutRollout(ctx context.Context, r RolloutRecord) error {
	if err := CheckName("app", r.App); err != nil {
		return fmt.Errorf("put rollout: %w", err)
	}
	if !json.Valid(r.State) {
		return fmt.Errorf("put rollout of %s: state is not JSON: %w", r.App, ErrInvalid)
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put rollout of %s: %w", r.App, err)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollouts).Put([]byte(r.App), v)
	})
}

// UpdateRollout implements Store.
func (s *Bolt) UpdateRollout(ctx context.Context, app string, fn func(cur *RolloutRecord) (*RolloutRecord, error)) error {
	if err := CheckName("app", app); err != nil {
		return fmt.Errorf("update rollout: %w", err)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRollouts)
		var cur *RolloutRecord
		if v := b.Get([]byte(app)); v != nil {
			cur = new(RolloutRecord)
			if err := json.Unmarshal(v, cur); err != nil {
				return fmt.Errorf("rollout of %s: %w", app, err)
			}
		}
		next, err := fn(cur)
		if err != nil || next == nil {
			return err
		}
		if next.App != app || !json.Valid(next.State) {
			return fmt.Errorf("update rollout of %s: app %q or state not JSON: %w", app, next.App, ErrInvalid)
		}
		v, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("update rollout of %s: %w", app, err)
		}
		return b.Put([]byte(app), v)
	})
}

// DeleteRollout implements Store.
func (s *Bolt) DeleteRollout(ctx context.Context, app string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollouts).Delete([]byte(app))
	})
}

// ListRollouts implements Store.
func (s *Bolt) ListRollouts(ctx context.Context) ([]RolloutRecord, error) {
	var out []RolloutRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
			var r RolloutRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("rollout of %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	return out, nil
}
