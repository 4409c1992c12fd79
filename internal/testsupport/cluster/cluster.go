package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/rest"
)

// Cluster is a running Kubernetes cluster created by a Provider.
type Cluster interface {
	// Name is the name given to Provider.Create.
	Name() string
	// Kubeconfig is the path of a kubeconfig file with a cluster-admin
	// identity. The file lives until Stop.
	Kubeconfig() string
	// RESTConfig returns a new copy of the cluster-admin client config.
	RESTConfig() *rest.Config
	// Dump writes diagnostics (the tail of the component logs) to w, for
	// test failure output. Call it before Stop.
	Dump(w io.Writer)
	// Stop tears the cluster down and removes its files. It is safe to call
	// more than once; later calls return the first call's result.
	Stop(ctx context.Context) error
}

// Provider creates clusters.
type Provider interface {
	// Create starts a cluster and returns once its API server is ready (and,
	// where the provider runs workloads, its node is Ready). On error
	// nothing is left running.
	Create(ctx context.Context, name string) (Cluster, error)
}

// EnvProvider selects the provider in ProviderFromEnv: "process" (default)
// or "kind".
const EnvProvider = "FLOTILLA_E2E_PROVIDER"

// ErrUnknownProvider is returned by ProviderFromEnv for an unknown
// FLOTILLA_E2E_PROVIDER value.
var ErrUnknownProvider = errors.New("unknown cluster provider")

// ProviderFromEnv returns the provider named by FLOTILLA_E2E_PROVIDER:
// "process" or empty gives a Full ProcessProvider using the binaries in
// binDir; "kind" gives a KindProvider. Both keep their files under workDir
// (empty means the system temp directory).
func ProviderFromEnv(binDir, workDir string) (Provider, error) {
	switch v := os.Getenv(EnvProvider); v {
	case "", "process":
		return &ProcessProvider{BinDir: binDir, WorkDir: workDir, Full: true}, nil
	case "kind":
		return &KindProvider{WorkDir: workDir}, nil
	default:
		return nil, fmt.Errorf("%s=%q: %w (want process or kind)", EnvProvider, v, ErrUnknownProvider)
	}
}
