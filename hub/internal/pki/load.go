package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

var _ Persister = (store.Store)(nil)

// Persister is where the CA certificate lives between hub starts;
// store.Store is one.
type Persister interface {
	// GetCA returns the stored CA certificate, and a key stored with it by
	// a hub of an earlier version (nil otherwise), or an error wrapping
	// store.ErrNotFound when there is none yet.
	GetCA(ctx context.Context) (certPEM, keyPEM []byte, err error)
	// PutCA stores the certificate; an empty key removes a stored one.
	PutCA(ctx context.Context, certPEM, keyPEM []byte) error
}

// LoadOrCreate returns the hub CA: its certificate from p, its private key
// from keyFile, a PKCS#8 (or SEC 1 EC) PEM file readable by the hub alone —
// never from the store, which backups copy and which an operator may hand
// around. A hub that restarts, or starts from a restored backup, so keeps
// the CA its agents trust and the CA hash its join commands carry.
//
//   - No CA yet: a new key is written to keyFile (mode 0600), unless
//     keyFile exists already (a key the operator made, for example a
//     mounted Secret), and a certificate for it is made and stored.
//   - A store of an earlier version holding the key: it is moved to
//     keyFile and removed from the store.
//   - keyFile must match the stored certificate; a key that does not is an
//     error, as is a certificate without a key — unless rotate is set: then
//     a new CA is made as if there were none (every cluster must enrol
//     again). With the stored CA's own key in keyFile, rotate changes
//     nothing, so a flag left set does not rotate at every start.
func LoadOrCreate(ctx context.Context, p Persister, keyFile string, rotate bool, now time.Time) (*CA, error) {
	certPEM, storedKey, err := p.GetCA(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	fileKey, ferr := os.ReadFile(keyFile)
	if ferr != nil && !errors.Is(ferr, fs.ErrNotExist) {
		return nil, fmt.Errorf("read CA key %s: %w", keyFile, ferr)
	}
	haveFile := ferr == nil
	if rotate && err == nil && (!haveFile || !keyMatches(certPEM, fileKey)) {
		err = store.ErrNotFound // a new CA, as on the first start
	}

	if errors.Is(err, store.ErrNotFound) {
		var ca *CA
		if haveFile {
			key, err := parseKey(fileKey)
			if err != nil {
				return nil, fmt.Errorf("CA key %s: %w", keyFile, err)
			}
			ca, err = newCAWithKey(key, now)
			if err != nil {
				return nil, err
			}
		} else {
			ca, err = NewCA(now)
			if err != nil {
				return nil, err
			}
			if err := writeKeyFile(keyFile, ca.KeyPEM()); err != nil {
				return nil, err
			}
		}
		if err := p.PutCA(ctx, ca.CertPEM(), nil); err != nil {
			return nil, fmt.Errorf("store new CA: %w", err)
		}
		return ca, nil
	}

	keyPEM := fileKey
	switch {
	case !haveFile && storedKey == nil:
		return nil, fmt.Errorf("CA key %s: missing, and the store holds the CA certificate only: restore the key file, or start a new CA with --rotate-ca (every cluster then enrols again)", keyFile)
	case !haveFile:
		// Written by an earlier version: move the key out of the store.
		if _, err := ParseCA(certPEM, storedKey); err != nil {
			return nil, fmt.Errorf("stored CA: %w", err)
		}
		if err := writeKeyFile(keyFile, storedKey); err != nil {
			return nil, err
		}
		keyPEM = storedKey
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyFile, err)
	}
	if storedKey != nil {
		if err := p.PutCA(ctx, certPEM, nil); err != nil {
			return nil, fmt.Errorf("remove the CA key from the store: %w", err)
		}
	}
	return ca, nil
}

func keyMatches(certPEM, keyPEM []byte) bool {
	_, err := ParseCA(certPEM, keyPEM)
	return err == nil
}

// writeKeyFile writes keyPEM to path, readable by the hub's user only, and
// whole or not at all.
func writeKeyFile(path string, keyPEM []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".ca-key-*")
	if err != nil {
		return fmt.Errorf("write CA key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write CA key %s: %w", path, err)
	}
	if _, err := tmp.Write(keyPEM); err != nil {
		tmp.Close()
		return fmt.Errorf("write CA key %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write CA key %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write CA key %s: %w", path, err)
	}
	// Link, not rename: a key file that appeared meanwhile is never
	// replaced.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("write CA key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// parseKey reads a PKCS#8 or SEC 1 EC private key in PEM.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return signer, nil
}
