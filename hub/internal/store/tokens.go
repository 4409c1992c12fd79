package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Raw tokens are 32 random bytes in base64url. API tokens carry their ID in
// front ("flt_<id>_<secret>") so that a lookup finds the record by ID and
// then compares hashes in constant time; the secret itself is never a key.
const (
	apiTokenPrefix = "flt_"
	tokenBytes     = 32
	apiIDBytes     = 8
)

// dummyHash stands in for a missing record's hash so that a miss costs a
// full comparison too.
var dummyHash = strings.Repeat("0", 2*sha256.Size)

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashToken is the stored form of a raw token: hex SHA-256.
func hashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// hashMatches compares the hash of raw with a stored hash in time that does
// not depend on where they differ.
func hashMatches(stored, raw string) bool {
	return subtle.ConstantTimeCompare([]byte(stored), []byte(hashToken(raw))) == 1
}

// CreateJoinToken makes a random join token for an existing cluster, valid
// for ttl from now, and returns it raw; only its hash is stored. It
// supersedes the cluster's earlier token, used or not. ErrNotFound if the
// cluster does not exist.
func (s *Bolt) CreateJoinToken(ctx context.Context, cluster string, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("create join token for cluster %s: ttl %s: %w", cluster, ttl, ErrInvalid)
	}
	raw, err := randomString(tokenBytes)
	if err != nil {
		return "", fmt.Errorf("create join token for cluster %s: %w", cluster, err)
	}
	tok := JoinToken{Cluster: cluster, Hash: hashToken(raw), ExpiresAt: now.Add(ttl).UTC()}
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
	tok := JoinToken{Hash: dummyHash}
	if v != nil {
		if err := json.Unmarshal(v, &tok); err != nil {
			return fmt.Errorf("decode join token: %w", err)
		}
	}
	// Compare even when there is no token, so that a miss costs a
	// comparison too.
	if !hashMatches(tok.Hash, raw) || v == nil {
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

// CreateAPIToken makes a bearer token named name (unique, else ErrConflict)
// with role RoleAdmin or RoleReadOnly, and returns it raw along with its
// stored form.
func (s *Bolt) CreateAPIToken(ctx context.Context, name, role string, now time.Time) (string, APIToken, error) {
	if err := checkName("api token", name); err != nil {
		return "", APIToken{}, err
	}
	if role != RoleAdmin && role != RoleReadOnly {
		return "", APIToken{}, fmt.Errorf("create api token %s: role %q: %w", name, role, ErrInvalid)
	}
	idb := make([]byte, apiIDBytes)
	if _, err := rand.Read(idb); err != nil {
		return "", APIToken{}, fmt.Errorf("create api token %s: read random: %w", name, err)
	}
	secret, err := randomString(tokenBytes)
	if err != nil {
		return "", APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
	}
	id := hex.EncodeToString(idb)
	raw := apiTokenPrefix + id + "_" + secret
	tok := APIToken{ID: id, Name: name, Hash: hashToken(raw), Role: role, CreatedAt: now.UTC()}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPITokens)
		if b.Get([]byte(id)) != nil {
			return fmt.Errorf("id %s: %w", id, ErrConflict)
		}
		err := b.ForEach(func(k, v []byte) error {
			var t APIToken
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode api token %s: %w", k, err)
			}
			if t.Name == name {
				return ErrConflict
			}
			return nil
		})
		if err != nil {
			return err
		}
		return putJSON(b, []byte(id), tok)
	})
	if err != nil {
		return "", APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
	}
	return raw, tok, nil
}

// LookupAPIToken returns the token raw authenticates, or ErrTokenInvalid.
func (s *Bolt) LookupAPIToken(ctx context.Context, raw string) (APIToken, error) {
	id, _, ok := strings.Cut(strings.TrimPrefix(raw, apiTokenPrefix), "_")
	if !strings.HasPrefix(raw, apiTokenPrefix) || !ok || len(id) != 2*apiIDBytes {
		return APIToken{}, fmt.Errorf("lookup api token: %w", ErrTokenInvalid)
	}
	tok := APIToken{Hash: dummyHash}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAPITokens).Get([]byte(id))
		if v != nil {
			if err := json.Unmarshal(v, &tok); err != nil {
				return fmt.Errorf("decode api token %s: %w", id, err)
			}
		}
		if !hashMatches(tok.Hash, raw) || v == nil {
			return ErrTokenInvalid
		}
		return nil
	})
	if err != nil {
		return APIToken{}, fmt.Errorf("lookup api token %s: %w", id, err)
	}
	return tok, nil
}

// ListAPITokens lists tokens in ID order.
func (s *Bolt) ListAPITokens(ctx context.Context, p Page) ([]APIToken, string, error) {
	var (
		out  []APIToken
		next string
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		next, err = forwardPage(tx.Bucket(bucketAPITokens), p, func(k, v []byte) error {
			var t APIToken
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode api token %s: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list api tokens: %w", err)
	}
	return out, next, nil
}

// DeleteAPIToken deletes the token with this ID; ErrNotFound if none.
func (s *Bolt) DeleteAPIToken(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPITokens)
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete api token %s: %w", id, err)
	}
	return nil
}

// GetCA returns the hub CA's certificate and key; ErrNotFound when none was
// stored yet.
func (s *Bolt) GetCA(ctx context.Context) (certPEM, keyPEM []byte, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCA)
		cert, key := b.Get([]byte("cert")), b.Get([]byte("key"))
		if cert == nil || key == nil {
			return ErrNotFound
		}
		certPEM, keyPEM = append([]byte(nil), cert...), append([]byte(nil), key...)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("get ca: %w", err)
	}
	return certPEM, keyPEM, nil
}

// PutCA stores the hub CA's certificate and key, replacing any earlier one.
func (s *Bolt) PutCA(ctx context.Context, certPEM, keyPEM []byte) error {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return fmt.Errorf("put ca: empty certificate or key: %w", ErrInvalid)
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCA)
		if err := b.Put([]byte("cert"), certPEM); err != nil {
			return err
		}
		return b.Put([]byte("key"), keyPEM)
	})
	if err != nil {
		return fmt.Errorf("put ca: %w", err)
	}
	return nil
}
