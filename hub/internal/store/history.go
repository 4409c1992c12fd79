package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// History entries live under their ID in one bucket, with three key-only
// indexes (by app, by cluster, by app and cluster) whose keys end in the
// big-endian ID, so each filter is one reverse range scan.

func histAppKey(app string, id uint64) []byte { return joinKey([]byte(app), IDKey(id)) }

func histClusterKey(cluster string, id uint64) []byte { return joinKey([]byte(cluster), IDKey(id)) }

func histPairPrefix(app, cluster string) []byte {
	return append(joinKey([]byte(app), []byte(cluster)), 0)
}

// AppendHistory stores e under a new ID (e.ID is ignored) and returns the
// ID. IDs grow with each append. When the (app, cluster) holds more than
// the history limit, its oldest entries are dropped. Concurrent calls share
// one transaction.
func (s *Bolt) AppendHistory(ctx context.Context, e HistoryEntry) (uint64, error) {
	if err := CheckName("app", e.App); err != nil {
		return 0, fmt.Errorf("append history: %w", err)
	}
	if err := CheckName("cluster", e.Cluster); err != nil {
		return 0, fmt.Errorf("append history of app %s: %w", e.App, err)
	}
	var id uint64
	err := s.batch(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		var err error
		if id, err = b.NextSequence(); err != nil {
			return err
		}
		e.ID = id
		if err := putJSON(b, IDKey(id), e); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistApp).Put(histAppKey(e.App, id), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistCluster).Put(histClusterKey(e.Cluster, id), nil); err != nil {
			return err
		}
		pair := histPairPrefix(e.App, e.Cluster)
		if err := tx.Bucket(bucketHistPair).Put(append(pair, IDKey(id)...), nil); err != nil {
			return err
		}
		return s.trimHistory(tx, e.App, e.Cluster, pair)
	})
	if err != nil {
		return 0, fmt.Errorf("append history of app %s on cluster %s: %w", e.App, e.Cluster, err)
	}
	return id, nil
}

// trimHistory drops the oldest entries of (app, cluster) beyond the limit.
func (s *Bolt) trimHistory(tx *bolt.Tx, app, cluster string, pair []byte) error {
	if s.historyLimit < 0 {
		return nil
	}
	// Oldest first; there is rarely more than one entry over the limit.
	var ids []uint64
	c := tx.Bucket(bucketHistPair).Cursor()
	for k, _ := c.Seek(pair); k != nil && bytes.HasPrefix(k, pair); k, _ = c.Next() {
		ids = append(ids, KeyID(k[len(pair):]))
	}
	if len(ids) <= s.historyLimit {
		return nil
	}
	ids = ids[:len(ids)-s.historyLimit]
	for _, id := range ids {
		for _, del := range []struct {
			bucket []byte
			key    []byte
		}{
			{bucketHistory, IDKey(id)},
			{bucketHistApp, histAppKey(app, id)},
			{bucketHistCluster, histClusterKey(cluster, id)},
			{bucketHistPair, append(pair, IDKey(id)...)},
		} {
			if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetHistory returns the entry with this ID; ErrNotFound if there is none
// (never written, or dropped by the history limit).
func (s *Bolt) GetHistory(ctx context.Context, id uint64) (HistoryEntry, error) {
	var e HistoryEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		e, err = getHistory(tx, id)
		return err
	})
	if err != nil {
		return HistoryEntry{}, fmt.Errorf("get history %d: %w", id, err)
	}
	return e, nil
}

func getHistory(tx *bolt.Tx, id uint64) (HistoryEntry, error) {
	v := tx.Bucket(bucketHistory).Get(IDKey(id))
	if v == nil {
		return HistoryEntry{}, ErrNotFound
	}
	var e HistoryEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return HistoryEntry{}, fmt.Errorf("decode history %d: %w", id, err)
	}
	return e, nil
}

// ListHistory lists entries newest first, filtered by app and by cluster
// when they are not "".
func (s *Bolt) ListHistory(ctx context.Context, app, cluster string, p Page) ([]HistoryEntry, string, error) {
	var (
		out  []HistoryEntry
		next string
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		bucket, prefix := bucketHistory, []byte(nil)
		switch {
		case app != "" && cluster != "":
			bucket, prefix = bucketHistPair, histPairPrefix(app, cluster)
		case app != "":
			bucket, prefix = bucketHistApp, append([]byte(app), 0)
		case cluster != "":
			bucket, prefix = bucketHistCluster, append([]byte(cluster), 0)
		}
		var err error
		next, err = reversePage(tx.Bucket(bucket), prefix, p, func(id uint64) error {
			e, err := getHistory(tx, id)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list history of app %q cluster %q: %w", app, cluster, err)
	}
	return out, next, nil
}

// AppendAudit stores e under a new ID (e.ID is ignored).
func (s *Bolt) AppendAudit(ctx context.Context, e AuditEntry) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.ID = id
		return putJSON(b, IDKey(id), e)
	})
	if err != nil {
		return fmt.Errorf("append audit %s %s: %w", e.Action, e.Target, err)
	}
	return nil
}

// ListAudit lists audit entries newest first.
func (s *Bolt) ListAudit(ctx context.Context, p Page) ([]AuditEntry, string, error) {
	var (
		out  []AuditEntry
		next string
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		var err error
		next, err = reversePage(b, nil, p, func(id uint64) error {
			var e AuditEntry
			if err := json.Unmarshal(b.Get(IDKey(id)), &e); err != nil {
				return fmt.Errorf("decode audit %d: %w", id, err)
			}
			out = append(out, e)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	return out, next, nil
}
