package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// MigrateOptions configure `flotilla-hub migrate`.
type MigrateOptions struct {
	From, To string
	// StateDir holds the bbolt store (hub.db) on the bbolt side.
	StateDir string
	// CAKeyFile is the bbolt side's CA key: read when migrating to
	// kubernetes (where the key lives in the CA Secret), written when
	// migrating to bbolt. Default ca.key in StateDir.
	CAKeyFile string
	// Store names the kubernetes side.
	Store StoreOptions
}

// BindFlags registers the options on fs.
func (o *MigrateOptions) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.From, "from", o.From, "store to copy from: bbolt or kubernetes")
	fs.StringVar(&o.To, "to", o.To, "store to copy into (must be empty): bbolt or kubernetes")
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "state dir of the bbolt store (its hub.db)")
	fs.StringVar(&o.CAKeyFile, "ca-key-file", o.CAKeyFile, "the bbolt hub's CA key file (default: ca.key in --state-dir); read going to kubernetes, written going to bbolt")
	fs.StringVar(&o.Store.Namespace, "store-namespace", o.Store.Namespace, "namespace of the kubernetes store (default: the pod's own, else flotilla-system)")
	fs.StringVar(&o.Store.Kubeconfig, "kubeconfig", o.Store.Kubeconfig, "kubeconfig of the cluster holding the kubernetes store (default: the pod's service account)")
	fs.BoolVar(&o.Store.InstallCRDs, "store-install-crds", o.Store.InstallCRDs, "create or update the kubernetes store's CRDs first")
}

// Validate checks the options.
func (o *MigrateOptions) Validate() error {
	ok := (o.From == StoreBolt && o.To == StoreKubernetes) || (o.From == StoreKubernetes && o.To == StoreBolt)
	if !ok {
		return fmt.Errorf("--from %q --to %q: want bbolt and kubernetes, one each", o.From, o.To)
	}
	if o.StateDir == "" {
		return errors.New("--state-dir is required")
	}
	return nil
}

func (o *MigrateOptions) keyFile() string {
	if o.CAKeyFile != "" {
		return o.CAKeyFile
	}
	return filepath.Join(o.StateDir, "ca.key")
}

// RunMigrate copies every record of one store into the other (stop the
// hubs first): clusters, join and API tokens (hashes and IDs kept, so
// tokens and agents' certificates go on working), the CA with its key,
// statuses, history, audit, pins and capabilities. The destination must
// be empty.
func RunMigrate(ctx context.Context, o MigrateOptions, log hclog.Logger) (store.MigrateCounts, error) {
	var n store.MigrateCounts
	if err := o.Validate(); err != nil {
		return n, err
	}
	bolt, err := store.Open(filepath.Join(o.StateDir, "hub.db"), log)
	if err != nil {
		return n, err
	}
	defer bolt.Close()
	kube, _, err := o.Store.OpenKube(ctx, -1, log)
	if err != nil {
		return n, err
	}
	defer kube.Close()

	var (
		src store.Store
		dst store.Importer
	)
	if o.From == StoreBolt {
		key, err := os.ReadFile(o.keyFile())
		if err != nil {
			return n, fmt.Errorf("CA key: %w", err)
		}
		src, dst = caKeySource{Store: bolt, key: key}, kube
	} else {
		if _, err := os.Stat(o.keyFile()); !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("CA key file %s exists already: migrating to bbolt writes it", o.keyFile())
		}
		src, dst = kube, caKeyToFile{Importer: bolt, keyFile: o.keyFile()}
	}
	if err := checkEmpty(ctx, dst); err != nil {
		return n, fmt.Errorf("migrate into %s: %w", o.To, err)
	}
	n, err = store.Migrate(ctx, dst, src)
	if err != nil {
		return n, fmt.Errorf("migrate %s to %s: %w", o.From, o.To, err)
	}
	log.Info("migrated", "from", o.From, "to", o.To, "clusters", n.Clusters, "join_tokens", n.JoinTokens, "api_tokens", n.APITokens,
		"statuses", n.Statuses, "history", n.History, "audit", n.Audit, "pins", n.Pins, "capabilities", n.Capabilities, "rollouts", n.Rollouts, "ca", n.CA)
	return n, nil
}

// checkEmpty refuses a destination that holds a CA, a cluster or a token.
func checkEmpty(ctx context.Context, s store.Store) error {
	if _, _, err := s.GetCA(ctx); !errors.Is(err, store.ErrNotFound) {
		if err != nil {
			return err
		}
		return errors.New("it holds a CA already: migrate into an empty store")
	}
	cs, _, err := s.ListClusters(ctx, store.Page{Limit: 1})
	if err != nil {
		return err
	}
	ts, _, err := s.ListAPITokens(ctx, store.Page{Limit: 1})
	if err != nil {
		return err
	}
	if len(cs)+len(ts) > 0 {
		return errors.New("it holds clusters or tokens already: migrate into an empty store")
	}
	return nil
}

// caKeySource is a bbolt store whose CA key is in its own file.
type caKeySource struct {
	store.Store
	key []byte
}

func (s caKeySource) GetCA(ctx context.Context) ([]byte, []byte, error) {
	cert, key, err := s.Store.GetCA(ctx)
	if err != nil || len(key) > 0 {
		return cert, key, err
	}
	return cert, s.key, nil
}

// caKeyToFile writes the CA key to its file and only the certificate into
// the bbolt store, as a bbolt hub keeps them.
type caKeyToFile struct {
	store.Importer
	keyFile string
}

func (d caKeyToFile) PutCA(ctx context.Context, cert, key []byte) error {
	if len(key) > 0 {
		if err := os.MkdirAll(filepath.Dir(d.keyFile), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(d.keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("write CA key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return fmt.Errorf("write CA key %s: %w", d.keyFile, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write CA key %s: %w", d.keyFile, err)
		}
	}
	return d.Importer.PutCA(ctx, cert, nil)
}
