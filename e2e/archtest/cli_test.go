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
	checkDeps(t, "./hub/cmd/flotilla", module+"hub/internal/cli", cliForbidden, cliAllowed,
		"the flotilla CLI", "the CLI may link only hub/api, light shared/ packages, pflag and a YAML library")
}

// checkDeps fails t for every package `go list -deps pattern` names that
// starts with a prefix of forbidden and is not in allowed (what names the
// binary in the message, why says where those packages belong). It first
// checks that the list holds mustLink, so that a moved package cannot make
// the rule look at nothing. It returns the list.
func checkDeps(t *testing.T, pattern, mustLink string, forbidden, allowed []string, what, why string) map[string]bool {
	t.Helper()
	deps := listDeps(t, pattern)
	if _, ok := deps[mustLink]; !ok {
		t.Fatalf("go list -deps %s lacks %s (%d packages): the test no longer looks at %s", pattern, mustLink, len(deps), what)
	}
	for pkg := range deps {
		for _, p := range forbidden {
			if strings.HasPrefix(pkg, p) && !slices.Contains(allowed, pkg) {
				t.Errorf("%s links %s (matches %q); %s", what, pkg, p, why)
			}
		}
	}
	return deps
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
