package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Importer is a Store that takes records with their identities as they are
// (IDs, hashes and times kept): what Migrate writes into.
type Importer interface {
	Store
	// ImportAPIToken stores tok with its ID and hash.
	ImportAPIToken(ctx context.Context, tok APIToken) error
	// ImportHistory and ImportAudit store an entry under its own ID;
	// ErrConflict if the ID is taken.
	ImportHistory(ctx context.Context, e HistoryEntry) error
	ImportAudit(ctx context.Context, e AuditEntry) error
	// ImportJoinToken stores the join token of an existing cluster.
	ImportJoinToken(ctx context.Context, tok JoinToken) error
}

var _ Importer = (*Bolt)(nil)

// MigrateCounts says how many records of each kind Migrate copied.
type MigrateCounts struct {
	Clusters, JoinTokens, APITokens, Statuses, History, Audit, Pins, Capabilities, Rollouts int
	CA                                                                                      bool
}

// Migrate copies everything src holds into dst, which should be empty:
// clusters with their join tokens, capabilities and statuses, API tokens
// (hashes and IDs kept, so every token goes on working), the CA (with its
// key if src holds one), history and audit with their IDs, and pins.
// Records dst holds already are replaced (clusters, statuses, pins,
// rollouts) or
// reported as ErrConflict (tokens, history and audit IDs).
func Migrate(ctx context.Context, dst Importer, src Store) (MigrateCounts, error) {
	var n MigrateCounts
	if cert, key, err := src.GetCA(ctx); err == nil {
		if err := dst.PutCA(ctx, cert, key); err != nil {
			return n, err
		}
		n.CA = true
	} else if !errors.Is(err, ErrNotFound) {
		return n, err
	}
	for p := (Page{Limit: MaxPageLimit}); ; {
		cs, next, err := src.ListClusters(ctx, p)
		if err != nil {
			return n, err
		}
		for _, c := range cs {
			if err := dst.PutCluster(ctx, c); err != nil {
				return n, err
			}
			n.Clusters++
			tok, err := src.GetJoinToken(ctx, c.Name)
			switch {
			case err == nil:
				if err := dst.ImportJoinToken(ctx, tok); err != nil {
					return n, err
				}
				n.JoinTokens++
			case !errors.Is(err, ErrNotFound):
				return n, err
			}
		}
		if next == "" {
			break
		}
		p.After = next
	}
	caps, err := src.ListCapabilities(ctx)
	if err != nil {
		return n, err
	}
	for _, c := range caps {
		if err := dst.PutCapabilities(ctx, c); err != nil {
			return n, err
		}
		n.Capabilities++
	}
	sts, err := src.ListStatus(ctx, "")
	if err != nil {
		return n, err
	}
	for _, r := range sts {
		if err := dst.PutStatus(ctx, r.Cluster, r.Status); err != nil {
			return n, err
		}
		n.Statuses++
	}
	for p := (Page{Limit: MaxPageLimit}); ; {
		ts, next, err := src.ListAPITokens(ctx, p)
		if err != nil {
			return n, err
		}
		for _, t := range ts {
			if err := dst.ImportAPIToken(ctx, t); err != nil {
				return n, fmt.Errorf("api token %s: %w", t.ID, err)
			}
			n.APITokens++
		}
		if next == "" {
			break
		}
		p.After = next
	}
	var hist []HistoryEntry
	for p := (Page{Limit: MaxPageLimit}); ; {
		es, next, err := src.ListHistory(ctx, "", "", p)
		if err != nil {
			return n, err
		}
		hist = append(hist, es...)
		if next == "" {
			break
		}
		p.After = next
	}
	// Oldest first, so that a destination trimming by its history limit
	// keeps the newest.
	sort.Slice(hist, func(i, j int) bool { return hist[i].ID < hist[j].ID })
	for _, e := range hist {
		if err := dst.ImportHistory(ctx, e); err != nil {
			return n, fmt.Errorf("history %d: %w", e.ID, err)
		}
		n.History++
	}
	for p := (Page{Limit: MaxPageLimit}); ; {
		es, next, err := src.ListAudit(ctx, p)
		if err != nil {
			return n, err
		}
		for _, e := range es {
			if err := dst.ImportAudit(ctx, e); err != nil {
				return n, fmt.Errorf("audit %d: %w", e.ID, err)
			}
			n.Audit++
		}
		if next == "" {
			break
		}
		p.After = next
	}
	pins, err := src.ListPins(ctx)
	if err != nil {
		return n, err
	}
	for _, p := range pins {
		if err := dst.PutPin(ctx, p); err != nil {
			return n, err
		}
		n.Pins++
	}
	ros, err := src.ListRollouts(ctx)
	if err != nil {
		return n, err
	}
	for _, r := range ros {
		if err := dst.PutRollout(ctx, r); err != nil {
			return n, err
		}
		n.Rollouts++
	}
	return n, nil
}

// ImportJoinToken implements Importer.
func (s *Bolt) ImportJoinToken(ctx context.Context, tok JoinToken) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketClusters).Get([]byte(tok.Cluster)) == nil {
			return ErrNotFound
		}
		return putJSON(tx.Bucket(bucketJoinTokens), []byte(tok.Cluster), tok)
	})
	if err != nil {
		return fmt.Errorf("import join token of cluster %s: %w", tok.Cluster, err)
	}
	return nil
}

// ImportAPIToken implements Importer.
func (s *Bolt) ImportAPIToken(ctx context.Context, tok APIToken) error {
	if err := CheckName("api token", tok.Name); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPITokens)
		if b.Get([]byte(tok.ID)) != nil {
			return ErrConflict
		}
		return putJSON(b, []byte(tok.ID), tok)
	})
	if err != nil {
		return fmt.Errorf("import api token %s: %w", tok.ID, err)
	}
	return nil
}

// ImportHistory implements Importer. The ID sequence moves past e.ID.
func (s *Bolt) ImportHistory(ctx context.Context, e HistoryEntry) error {
	if err := CheckName("app", e.App); err != nil {
		return err
	}
	if err := CheckName("cluster", e.Cluster); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		if b.Get(IDKey(e.ID)) != nil {
			return ErrConflict
		}
		if b.Sequence() < e.ID {
			if err := b.SetSequence(e.ID); err != nil {
				return err
			}
		}
		if err := putJSON(b, IDKey(e.ID), e); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistApp).Put(histAppKey(e.App, e.ID), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistCluster).Put(histClusterKey(e.Cluster, e.ID), nil); err != nil {
			return err
		}
		pair := histPairPrefix(e.App, e.Cluster)
		if err := tx.Bucket(bucketHistPair).Put(append(pair, IDKey(e.ID)...), nil); err != nil {
			return err
		}
		return s.trimHistory(tx, e.App, e.Cluster, pair)
	})
	if err != nil {
		return fmt.Errorf("import history %d: %w", e.ID, err)
	}
	return nil
}

// ImportAudit implements Importer. The ID sequence moves past e.ID.
func (s *Bolt) ImportAudit(ctx context.Context, e AuditEntry) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b.Get(IDKey(e.ID)) != nil {
			return ErrConflict
		}
		if b.Sequence() < e.ID {
			if err := b.SetSequence(e.ID); err != nil {
				return err
			}
		}
		return putJSON(b, IDKey(e.ID), e)
	})
	if err != nil {
		return fmt.Errorf("import audit %d: %w", e.ID, err)
	}
	return nil
}
