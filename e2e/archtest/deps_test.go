// Package archtest checks the module's dependency rules with `go list`.
package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/flotilla-cd/flotilla/"

// TestDependencyRules: the agent never imports the hub, the hub never
// imports the agent, shared/ imports neither, nothing outside e2e/ imports
// e2e/, and product code never imports test support; the same rules hold
// for test files.
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

// testSupport reports whether pkg is test support: imported by tests (and
// e2e's tools) only.
func testSupport(pkg string) bool {
	return strings.HasPrefix(pkg, "internal/testsupport/") || strings.Contains(pkg, "/testsupport/") ||
		strings.HasSuffix(pkg, "/apitest") || strings.HasSuffix(pkg, "/chartsourcetest") || pkg == "agent/internal/testenv"
}

func violates(pkg, dep string, test bool) string {
	from, to := top(pkg), top(dep)
	switch {
	case from == "agent" && to == "hub":
		return "the agent never imports the hub"
	case from == "hub" && to == "agent":
		return "the hub never imports the agent"
	case from == "shared" && (to == "hub" || to == "agent" || to == "internal"):
		return "shared/ imports neither the hub, the agent nor test support"
	case from != "e2e" && to == "e2e":
		return "nothing outside e2e/ imports e2e/"
	case testSupport(dep) && !test && !testSupport(pkg) && from != "e2e":
		return "product code never imports test support"
	}
	return ""
}
