package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// GetCA returns the hub CA's certificate and, from stores written before
// the key moved to a file of its own, its key (nil otherwise); ErrNotFound
// when no certificate was stored yet.
func (s *Bolt) GetCA(ctx context.Context) (certPEM, keyPEM []byte, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCA)
		cert, key := b.Get([]byte("cert")), b.Get([]byte("key"))
		if cert == nil {
			return ErrNotFound
		}
		certPEM = append([]byte(nil), cert...)
		if key != nil {
			keyPEM = append([]byte(nil), key...)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("get ca: %w", err)
	}
	return certPEM, keyPEM, nil
}

// PutCA stores the hub CA's certificate, replacing any earlier one, and its
// key, or with an empty key removes any key stored (the hub keeps its CA key
// in a file of its own; see pki.LoadOrCreate).
func (s *Bolt) PutCA(ctx context.Context, certPEM, keyPEM []byte) error {
	if len(certPEM) == 0 {
		return fmt.Errorf("put ca: empty certificate: %w", ErrInvalid)
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCA)
		if err := b.Put([]byte("cert"), certPEM); err != nil {
			return err
		}
		if len(keyPEM) == 0 {
			return b.Delete([]byte("key"))
		}
		return b.Put([]byte("key"), keyPEM)
	})
	if err != nil {
		return fmt.Errorf("put ca: %w", err)
	}
	return nil
}
