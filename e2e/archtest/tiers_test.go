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

// realParts are the test-support packages that start real processes or
// servers: control planes, git servers, hubs, browsers, containers and
// chart repositories.
var realParts = []string{
	"internal/testsupport/cluster",
	"internal/testsupport/harness",
	"internal/testsupport/gitserver",
	"internal/testsupport/browser",
	"internal/testsupport/docker",
	"hub/testsupport/chartrepo",
	"agent/internal/testenv",
}

// TestUnitTierHasNoRealParts: built with the unit tag (make unit), no test
// imports a package that starts real processes, so the unit tier needs no
// control plane, git, browser or Docker. Test files that need them carry
// `//go:build !unit`.
func TestUnitTierHasNoRealParts(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	cmd := exec.Command("go", "list", "-tags", "unit", "-f", `{{.ImportPath}}|{{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -tags unit: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		pkg, imports, ok := strings.Cut(sc.Text(), "|")
		if !ok {
			continue
		}
		n++
		for imp := range strings.FieldsSeq(imports) {
			dep := strings.TrimPrefix(imp, module)
			for _, real := range realParts {
				if dep == real {
					t.Errorf("%s: a test built for the unit tier imports %s; give that test file `//go:build !unit`", strings.TrimPrefix(pkg, module), dep)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("go list found only %d packages", n)
	}
}
