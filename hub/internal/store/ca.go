package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

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
