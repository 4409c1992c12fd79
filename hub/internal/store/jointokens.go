package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CreateJoinToken makes a random join token for an existing cluster, valid
// for ttl from now, and returns it raw; only its hash is stored. It
// supersedes the cluster's earlier token, used or not. ErrNotFound if the
// cluster does not exist.
func (s *Bolt) CreateJoinToken(ctx context.Context, cluster string, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("create join token for cluster %s: ttl %s: %w", cluster, ttl, ErrInvalid)
	}
	raw, err := RandomString(TokenBytes)
	if err != nil {
		return "", fmt.Errorf("create join token for cluster %s: %w", cluster, err)
	}
	tok := JoinToken{Cluster: cluster, Hash: HashToken(raw), ExpiresAt: now.Add(ttl).UTC()}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketClusters).Get([]byte(cluster)) == nil {
			return ErrNotFound
		}
		return putJSON(tx.Bucket(bucketJoinTokens), []byte(cluster), tok)
	})
	if err != nil {
		return "", fmt.Errorf("create join token for cluster %s: %w", cluster, err)
	}
	return raw, nil
}

// ConsumeJoinToken checks raw against the cluster's token and marks it used
// at now, in one transaction. It returns ErrTokenInvalid for an unknown
// cluster, a superseded token or one of another cluster, ErrTokenUsed for a
// second use and ErrTokenExpired at or after its expiry.
func (s *Bolt) ConsumeJoinToken(ctx context.Context, cluster, raw string, now time.Time) error {
	err := s.update(ctx, func(tx *bolt.Tx) error { return consumeJoinToken(tx, cluster, raw, now) })
	if err != nil {
		return fmt.Errorf("consume join token of cluster %s: %w", cluster, err)
	}
	return nil
}

// EnrollCluster consumes the cluster's join token as ConsumeJoinToken does
// and applies fn to the cluster, in one transaction: when fn fails (say the
// CSR cannot be signed) the token stays unused and nothing is written. fn
// runs while the store's write lock is held, so it must be quick.
func (s *Bolt) EnrollCluster(ctx context.Context, cluster, raw string, now time.Time, fn func(*Cluster) error) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if err := consumeJoinToken(tx, cluster, raw, now); err != nil {
			return err
		}
		c, err := getCluster(tx, cluster)
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		if c.Name != cluster {
			return fmt.Errorf("rename to %q: %w", c.Name, ErrConflict)
		}
		return putJSON(tx.Bucket(bucketClusters), []byte(cluster), c)
	})
	if err != nil {
		return fmt.Errorf("enroll cluster %s: %w", cluster, err)
	}
	return nil
}

func consumeJoinToken(tx *bolt.Tx, cluster, raw string, now time.Time) error {
	b := tx.Bucket(bucketJoinTokens)
	v := b.Get([]byte(cluster))
	tok := JoinToken{Hash: DummyHash}
	if v != nil {
		if err := json.Unmarshal(v, &tok); err != nil {
			return fmt.Errorf("decode join token: %w", err)
		}
	}
	// Compare even when there is no token, so that a miss costs a
	// comparison too.
	if !HashMatches(tok.Hash, raw) || v == nil {
		return ErrTokenInvalid
	}
	if !tok.UsedAt.IsZero() {
		return ErrTokenUsed
	}
	if !now.Before(tok.ExpiresAt) {
		return ErrTokenExpired
	}
	tok.UsedAt = now.UTC()
	return putJSON(b, []byte(cluster), tok)
}

// GetJoinToken returns the stored form of the cluster's join token.
func (s *Bolt) GetJoinToken(ctx context.Context, cluster string) (JoinToken, error) {
	var tok JoinToken
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketJoinTokens).Get([]byte(cluster))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &tok)
	})
	if err != nil {
		return JoinToken{}, fmt.Errorf("get join token of cluster %s: %w", cluster, err)
	}
	return tok, nil
}
