package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/store/kubestore"
)

// Store kinds of --store.
const (
	StoreBolt       = "bbolt"
	StoreKubernetes = "kubernetes"
)

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// StoreOptions select the hub's state store.
type StoreOptions struct {
	// Kind is StoreBolt (the embedded default: one file in the state dir,
	// one hub) or StoreKubernetes (the Kubernetes API of the cluster the
	// hub runs in; several hubs may share it).
	Kind string
	// Namespace holds the Kubernetes store; empty: the pod's own
	// namespace, else flotilla-system.
	Namespace string
	// Kubeconfig is the file to reach the API server with; empty: the
	// pod's service account.
	Kubeconfig string
	// InstallCRDs creates or updates the store's CRDs at start (needs
	// cluster-wide rights on CRDs; the deploy/ manifests install them
	// instead).
	InstallCRDs bool
}

// BindFlags registers the options on fs.
func (o *StoreOptions) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kind, "store", o.Kind, "state store: bbolt (one file in --state-dir, one hub) or kubernetes (custom resources and Secrets in --store-namespace; several hubs, active/active)")
	fs.StringVar(&o.Namespace, "store-namespace", o.Namespace, "namespace of the kubernetes store (default: the pod's own, else flotilla-system)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the cluster holding the kubernetes store (default: the pod's service account)")
	fs.BoolVar(&o.InstallCRDs, "store-install-crds", o.InstallCRDs, "create or update the kubernetes store's CRDs at start (needs cluster-wide rights; deploy/ installs them otherwise)")
}

// Validate checks the options.
func (o *StoreOptions) Validate() error {
	switch o.Kind {
	case StoreBolt, StoreKubernetes:
		return nil
	}
	return fmt.Errorf("--store %q: want %s or %s", o.Kind, StoreBolt, StoreKubernetes)
}

// RESTConfig returns the client config of the store's API server.
func (o *StoreOptions) RESTConfig() (*rest.Config, error) {
	if o.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", o.Kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: not in a pod and no --kubeconfig: %w", err)
	}
	return cfg, nil
}

// StoreNamespace returns the namespace of the Kubernetes store.
func (o *StoreOptions) StoreNamespace() string {
	if o.Namespace != "" {
		return o.Namespace
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	return "flotilla-system"
}

// OpenKube opens the Kubernetes store the options name.
func (o *StoreOptions) OpenKube(ctx context.Context, historyLimit int, log hclog.Logger) (*kubestore.Store, *rest.Config, error) {
	cfg, err := o.RESTConfig()
	if err != nil {
		return nil, nil, err
	}
	if o.InstallCRDs {
		if err := kubestore.InstallCRDs(ctx, cfg); err != nil {
			return nil, nil, err
		}
	}
	k, err := kubestore.New(cfg, kubestore.Options{Namespace: o.StoreNamespace(), HistoryLimit: historyLimit}, log)
	if err != nil {
		return nil, nil, err
	}
	return k, cfg, nil
}

// loadSharedCA returns the CA of the Kubernetes store, whose key lives in
// the same Secret as its certificate: every hub signs with it. Of hubs
// starting at once on an empty store, one makes the CA, the others load it.
func loadSharedCA(ctx context.Context, k *kubestore.Store) (*pki.CA, error) {
	for range 3 {
		cert, key, err := k.GetCA(ctx)
		switch {
		case err == nil && len(key) == 0:
			return nil, fmt.Errorf("CA Secret %s/%s holds no key (tls.key): migrate with --ca-key-file", k.Namespace(), kubestore.CASecretName)
		case err == nil:
			return pki.ParseCA(cert, key)
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		ca, err := pki.NewCA(time.Now())
		if err != nil {
			return nil, err
		}
		err = k.CreateCA(ctx, ca.CertPEM(), ca.KeyPEM())
		if err == nil {
			return ca, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
	}
	return nil, errors.New("load the CA: it keeps changing")
}
