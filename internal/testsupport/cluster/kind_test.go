//go:build !unit

package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKindCreateFailureCleansUp: when the kind CLI fails (here: it is not
// installed), Create returns an error naming the command and leaves no
// cluster directory behind.
func TestKindCreateFailureCleansUp(t *testing.T) {
	work := t.TempDir()
	missing := filepath.Join(t.TempDir(), "kind")
	p := &KindProvider{Binary: missing, WorkDir: work, Image: "flotilla-local/node:v1"}
	c, err := p.Create(t.Context(), "alpha")
	if err == nil {
		t.Fatalf("Create with no kind binary succeeded: %v", c)
	}
	for _, want := range []string{"create kind cluster alpha", missing + " create cluster --name flotilla-alpha-", "--image flotilla-local/node:v1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	left, rerr := os.ReadDir(work)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(left) != 0 {
		t.Errorf("work dir keeps %d entries after the failed create: %v", len(left), left)
	}
}
