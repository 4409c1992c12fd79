// Package archtest checks the module's dependency rules with `go list`.
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

const module = "github.com/flotilla-cd/flotilla/"

// testSupportImporters are the product test files' packages that still
// start real clusters, git servers or hub processes through e2e's test
// support (issue 16: to move it to a location of its own). The list may
// only shrink: a new importer fails the test.
var testSupportImporters = []string{
	"agent/internal/engine", "agent/internal/hubclient", "deploy",
	"hub/internal/controller", "hub/internal/gitsource", "hub/internal/render",
	"hub/internal/httpapi/apitest", // test support of the API's tests, imported only by tests
}

// TestDependencyRules: the agent never imports the hub, the hub never
// imports the agent, shared/ imports neither, product code never imports
// e2e/ or test support (*/testsupport/, */apitest), and product tests
// reach e2e/ only through the known importers above.
func TestDependencyRules(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "|", 3)
		if len(parts) != 3 {
			continue
		}
		pkg := strings.TrimPrefix(parts[0], module)
		n++
		check := func(imports string, test bool) {
			for imp := range strings.FieldsSeq(imports) {
				dep, ok := strings.CutPrefix(imp, module)
				if !ok || dep == pkg {
					continue
				}
				if why := violates(pkg, dep, test); why != "" {
					t.Errorf("%s imports %s%s: %s", pkg, dep, map[bool]string{true: " (in a test)", false: ""}[test], why)
				}
			}
		}
		check(parts[1], false)
		check(parts[2], true)
	}
	if n < 20 {
		t.Fatalf("go list found only %d packages", n)
	}
}

func top(pkg string) string { return strings.SplitN(pkg, "/", 2)[0] }

func violates(pkg, dep string, test bool) string {
	from, to := top(pkg), top(dep)
	switch {
	case from == "agent" && to == "hub":
		return "the agent never imports the hub"
	case from == "hub" && to == "agent":
		return "the hub never imports the agent"
	case from == "shared" && (to == "hub" || to == "agent"):
		return "shared/ imports neither the hub nor the agent"
	case from != "e2e" && to == "e2e" && !test && !strings.HasSuffix(pkg, "/apitest"):
		return "product code never imports e2e/"
	case strings.HasSuffix(dep, "/apitest") && !test && from != "e2e":
		return "product code never imports test support"
	case strings.Contains(dep, "/testsupport/") && !test && from != "e2e" && !strings.Contains(pkg, "/testsupport/"):
		return "product code never imports test support (*/testsupport/)"
	case from != "e2e" && to == "e2e" && !slices.Contains(testSupportImporters, pkg):
		return "a product test imports e2e/ test support (only the listed packages still do)"
	}
	return ""
}
