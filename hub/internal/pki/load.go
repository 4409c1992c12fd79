package pki

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

var _ Persister = (store.Store)(nil)

// Persister is where the CA lives between hub starts; store.Store is one.
type Persister interface {
	// GetCA returns the stored CA, or an error wrapping store.ErrNotFound
	// when there is none yet.
	GetCA(ctx context.Context) (certPEM, keyPEM []byte, err error)
	PutCA(ctx context.Context, certPEM, keyPEM []byte) error
}

// LoadOrCreate returns the CA held by p, or creates one, stores it and
// returns it when p holds none. A hub that restarts, or starts from a
// restored backup, so keeps the CA its agents trust and the CA hash its join
// commands carry.
func LoadOrCreate(ctx context.Context, p Persister, now time.Time) (*CA, error) {
	certPEM, keyPEM, err := p.GetCA(ctx)
	if errors.Is(err, store.ErrNotFound) {
		ca, err := NewCA(now)
		if err != nil {
			return nil, err
		}
		if err := p.PutCA(ctx, ca.CertPEM(), ca.KeyPEM()); err != nil {
			return nil, fmt.Errorf("store new CA: %w", err)
		}
		return ca, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	return ParseCA(certPEM, keyPEM)
}
