package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// openConfiguredStore opens the store o selects and loads the CA; for the
// Kubernetes store it also returns the API server's client config.
func openConfiguredStore(ctx context.Context, o Options, log hclog.Logger) (store.Store, *pki.CA, *rest.Config, error) {
	if o.Store.Kind != StoreKubernetes {
		st, ca, err := openStore(ctx, filepath.Join(o.StateDir, "hub.db"), o.caKeyFile(), o.RotateCA, log)
		if err != nil {
			return nil, nil, nil, err
		}
		return st, ca, nil, nil
	}
	k, cfg, err := o.Store.OpenKube(ctx, 0, log)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := loadSharedCA(ctx, k)
	if err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	log.Info("kubernetes store", "namespace", k.Namespace())
	return k, ca, cfg, nil
}

// openStore opens the store at path and loads the CA, its key from
// keyFile. A store of an earlier version holds the CA key itself: it is
// moved to keyFile, and the store file is compacted so that the key does
// not stay behind in its free pages.
// With rotate, a key file that is missing or not the stored CA's makes a
// new CA (see pki.LoadOrCreate).
func openStore(ctx context.Context, path, keyFile string, rotate bool, log hclog.Logger) (*store.Bolt, *pki.CA, error) {
	st, err := store.Open(path, log)
	if err != nil {
		return nil, nil, err
	}
	oldCert, storedKey, err := st.GetCA(ctx)
	moving := err == nil && storedKey != nil
	ca, err := pki.LoadOrCreate(ctx, st, keyFile, rotate, time.Now())
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if oldCert != nil && string(oldCert) != string(ca.CertPEM()) {
		log.Warn("started a new CA (--rotate-ca): every cluster must enrol again with a new join token", "ca_hash", ca.Hash(), "key_file", keyFile)
	}
	if !moving {
		return st, ca, nil
	}
	if err := st.Close(); err != nil {
		return nil, nil, err
	}
	if err := store.CompactFile(path); err != nil {
		return nil, nil, err
	}
	log.Warn("moved the CA key out of the store into its own file; stores and backups written before still hold it: rotate the CA if they may have been read", "key_file", keyFile)
	st, err = store.Open(path, log)
	if err != nil {
		return nil, nil, fmt.Errorf("reopen after moving the CA key: %w", err)
	}
	return st, ca, nil
}
