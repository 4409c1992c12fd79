package store

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// Cursors are the base64url form of the last key (forward lists) or last ID
// (newest-first lists) of the previous page. Callers treat them as opaque.

// EffectiveLimit is p.Limit with its default (DefaultPageLimit) and
// bound (MaxPageLimit) applied.
func (p Page) EffectiveLimit() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageLimit
	case p.Limit > MaxPageLimit:
		return MaxPageLimit
	}
	return p.Limit
}

// DecodeCursor is the key a cursor holds (ErrBadCursor if it holds none).
func DecodeCursor(after string) ([]byte, error) {
	if after == "" {
		return nil, nil
	}
	k, err := base64.RawURLEncoding.DecodeString(after)
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("cursor %q: %w", after, ErrBadCursor)
	}
	return k, nil
}

// EncodeCursor is the cursor of key k.
func EncodeCursor(k []byte) string { return base64.RawURLEncoding.EncodeToString(k) }

// forwardPage calls fn for up to p.Limit entries of b in key order, after the
// cursor, and returns the cursor of the next page ("" at the end).
func forwardPage(b *bolt.Bucket, p Page, fn func(k, v []byte) error) (string, error) {
	after, err := DecodeCursor(p.After)
	if err != nil {
		return "", err
	}
	c := b.Cursor()
	k, v := c.First()
	if after != nil {
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	n, limit := 0, p.EffectiveLimit()
	var last []byte
	for ; k != nil; k, v = c.Next() {
		if n == limit {
			return EncodeCursor(last), nil
		}
		if err := fn(k, v); err != nil {
			return "", err
		}
		last = k
		n++
	}
	return "", nil
}

// reversePage calls fn for the IDs of up to p.Limit keys "prefix + 8-byte
// ID" of b, newest (highest ID) first, below the cursor, and returns the
// cursor of the next page ("" at the end).
func reversePage(b *bolt.Bucket, prefix []byte, p Page, fn func(id uint64) error) (string, error) {
	after, err := DecodeCursor(p.After)
	if err != nil {
		return "", err
	}
	if after != nil && len(after) != 8 {
		return "", fmt.Errorf("cursor %q: %w", p.After, ErrBadCursor)
	}
	start, inclusive := IDKey(math.MaxUint64), true
	if after != nil {
		start, inclusive = after, false
	}
	target := append(bytes.Clone(prefix), start...)
	c := b.Cursor()
	k, _ := c.Seek(target)
	switch {
	case k == nil:
		k, _ = c.Last()
	case !(inclusive && bytes.Equal(k, target)):
		k, _ = c.Prev()
	}
	n, limit := 0, p.EffectiveLimit()
	var last []byte
	for ; k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Prev() {
		if n == limit {
			return EncodeCursor(last), nil
		}
		id := k[len(prefix):]
		if err := fn(KeyID(id)); err != nil {
			return "", err
		}
		last = id
		n++
	}
	return "", nil
}
