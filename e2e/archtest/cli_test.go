package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// cliForbidden are the import path prefixes the `flotilla` command must
// not link: it talks to the hub over HTTP and needs none of the hub's
// renderers, git, store or Kubernetes clients.
var cliForbidden = []string{
	"helm.sh/",
	"sigs.k8s.io/kustomize/",
	"github.com/go-git/",
	"go.etcd.io/bbolt",
	"k8s.io/", // client-go, apimachinery and the rest of Kubernetes
	"google.golang.org/grpc",
	"github.com/google/go-jsonnet",
	module + "hub/internal/", // but the CLI's own package, below
	module + "agent/",
	module + "shared/api/",
}

// cliAllowed are this module's packages under cliForbidden that the CLI
// may link.
var cliAllowed = []string{module + "hub/internal/cli"}

// TestCLIDependencies: `go list -deps ./hub/cmd/flotilla` contains no
// Helm, Kustomize, go-git, bbolt, Kubernetes or gRPC package and none of
// the hub beyond the CLI itself; the CLI reaches the hub only through the
// wire types of hub/api.
func TestCLIDependencies(t *testing.T) {
	deps := listDeps(t, "./hub/cmd/flotilla")
	if _, ok := deps[module+"hub/internal/cli"]; !ok {
		t.Fatalf("go list -deps ./hub/cmd/flotilla lacks hub/internal/cli (%d packages): the test no longer looks at the CLI", len(deps))
	}
	for pkg := range deps {
		for _, p := range cliForbidden {
			if strings.HasPrefix(pkg, p) && !slices.Contains(cliAllowed, pkg) {
				t.Errorf("the flotilla CLI links %s (matches %q); the CLI may link only hub/api, light shared/ packages, pflag and a YAML library", pkg, p)
			}
		}
	}
}

// TestWireTypesStdlibOnly: hub/api, the HTTP API's wire types, imports
// only the standard library, so that every client can link it.
func TestWireTypesStdlibOnly(t *testing.T) {
	for pkg, std := range listDeps(t, "./hub/api") {
		if !std && pkg != module+"hub/api" {
			t.Errorf("hub/api links %s; the wire types import only the standard library", pkg)
		}
	}
}

// listDeps returns the packages `go list -deps` names for pattern (run at
// the module's root), each with whether it is in the standard library.
func listDeps(t *testing.T, pattern string) map[string]bool {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", pattern)
	cmd.Dir = filepath.Dir(filepath.Dir(filepath.Dir(file)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v: %s", pattern, err, stderr.Bytes())
	}
	deps := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		pkg, std, _ := strings.Cut(sc.Text(), " ")
		deps[pkg] = std == "true"
	}
	return deps
}
