package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CreateAPIToken makes a bearer token named name (unique, else ErrConflict)
// with role RoleAdmin or RoleReadOnly that does not expire, and returns it
// raw along with its stored form.
func (s *Bolt) CreateAPIToken(ctx context.Context, name, role string, now time.Time) (string, APIToken, error) {
	if role != RoleAdmin && role != RoleReadOnly {
		return "", APIToken{}, fmt.Errorf("create api token %s: role %q: %w", name, role, ErrInvalid)
	}
	return s.IssueAPIToken(ctx, APIToken{Name: name, Role: role}, now)
}

// IssueAPIToken implements Store.
func (s *Bolt) IssueAPIToken(ctx context.Context, spec APIToken, now time.Time) (string, APIToken, error) {
	name := spec.Name
	if err := CheckName("api token", name); err != nil {
		return "", APIToken{}, err
	}
	switch {
	case spec.Role != RoleAdmin && spec.Role != RoleReadOnly && spec.Role != RoleDeployer:
		return "", APIToken{}, fmt.Errorf("create api token %s: role %q: %w", name, spec.Role, ErrInvalid)
	case spec.Role == RoleDeployer && len(spec.Projects) == 0:
		return "", APIToken{}, fmt.Errorf("create api token %s: role %s needs a project: %w", name, spec.Role, ErrInvalid)
	case spec.Role != RoleDeployer && len(spec.Projects) != 0:
		return "", APIToken{}, fmt.Errorf("create api token %s: role %s takes no project: %w", name, spec.Role, ErrInvalid)
	case spec.Kind != KindToken && spec.Kind != KindWebSession && spec.Kind != KindCLISession:
		return "", APIToken{}, fmt.Errorf("create api token %s: kind %q: %w", name, spec.Kind, ErrInvalid)
	}
	idb := make([]byte, APIIDBytes)
	if _, err := rand.Read(idb); err != nil {
		return "", APIToken{}, fmt.Errorf("create api token %s: read random: %w", name, err)
	}
	secret, err := RandomString(TokenBytes)
	if err != nil {
		return "", APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
	}
	id := hex.EncodeToString(idb)
	raw := APITokenPrefix + id + "_" + secret
	tok := spec
	tok.ID, tok.Hash, tok.CreatedAt = id, HashToken(raw), now.UTC()
	if !tok.ExpiresAt.IsZero() {
		tok.ExpiresAt = tok.ExpiresAt.UTC()
	}
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
			if tok.Kind == KindToken && t.Kind == KindToken && t.Name == name {
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
	id, _, ok := strings.Cut(strings.TrimPrefix(raw, APITokenPrefix), "_")
	if !strings.HasPrefix(raw, APITokenPrefix) || !ok || len(id) != 2*APIIDBytes {
		return APIToken{}, fmt.Errorf("lookup api token: %w", ErrTokenInvalid)
	}
	tok := APIToken{Hash: DummyHash}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAPITokens).Get([]byte(id))
		if v != nil {
			if err := json.Unmarshal(v, &tok); err != nil {
				return fmt.Errorf("decode api token %s: %w", id, err)
			}
		}
		if !HashMatches(tok.Hash, raw) || v == nil {
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
