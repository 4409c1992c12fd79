// Package testenv starts a real control plane (etcd and kube-apiserver from
// the repository's bin/ folder, through controller-runtime's envtest) for the
// agent's integration tests and benchmarks, and offers small helpers to
// build bundles and wait for conditions. It is imported by tests only.
package testenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// EnvBinDir overrides where the control-plane binaries are.
const EnvBinDir = "FLOTILLA_TEST_BIN"

// BinDir returns the folder holding etcd and kube-apiserver: $FLOTILLA_TEST_BIN,
// else bin/ at the module root (found by walking up to go.mod).
func BinDir() (string, error) {
	if d := os.Getenv(EnvBinDir); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Env is a running control plane.
type Env struct {
	env *envtest.Environment
	// Config is a cluster-admin client config.
	Config *rest.Config
}

// Start starts etcd and kube-apiserver. Call Stop when done (typically
// from TestMain). It fails when the binaries are missing.
func Start() (*Env, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("control-plane binary %s not found in %s (build them with e2e/tools/build.sh or set %s): %w", b, bin, EnvBinDir, err)
		}
	}
	e := &envtest.Environment{BinaryAssetsDirectory: bin, ControlPlaneStartTimeout: time.Minute, ControlPlaneStopTimeout: time.Minute}
	// Room for the benchmarks' thousands of Services.
	e.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/12")
	cfg, err := e.Start()
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	return &Env{env: e, Config: cfg}, nil
}

// AddUser returns a client config for a new user authenticated by a client
// certificate, member of no group: the API server (RBAC on) lets it do
// nothing but discovery until the test grants it roles.
func (e *Env) AddUser(name string) (*rest.Config, error) {
	u, err := e.env.AddUser(envtest.User{Name: name}, e.Config)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	return u.Config(), nil
}

// Stop stops the control plane and removes its files.
func (e *Env) Stop() error { return e.env.Stop() }

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with the last message cond returned.
func Eventually(tb testing.TB, timeout time.Duration, cond func(ctx context.Context) (bool, string)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var msg string
	for {
		var ok bool
		ok, msg = cond(ctx)
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("condition not met within %s: %s", timeout, msg)
		case <-tick.C:
		}
	}
}

// Obj builds an unstructured object from a map.
func Obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

// UnitOnly reports whether the tests run with -short (`make unit`): a
// package's TestMain then starts no control plane, and its tests that need
// one skip through Need. Call it from TestMain (it parses the flags).
func UnitOnly() bool {
	flag.Parse()
	return testing.Short()
}

// Need skips tb when no control plane was started (-short, `make unit`).
func Need(tb testing.TB, started bool) {
	tb.Helper()
	if !started {
		tb.Skip("needs a control plane (make test); not run by -short")
	}
}
