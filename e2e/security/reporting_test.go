//go:build !unit

package security

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

var (
	agentsimOnce sync.Once
	agentsimBin  string
	agentsimErr  error
)

// reportingCluster registers a cluster with h and connects one simulated
// agent for it (e2e/cmd/agentsim, a real gRPC client enrolled as an agent
// is) that reports its API server's capabilities: the hub renders Helm
// charts only for clusters that did. It returns the cluster's name,
// prefix + "-0"; the simulated agent stops when t ends. labels are k=v.
func reportingCluster(t *testing.T, h *harness.Hub, prefix string, labels ...string) string {
	t.Helper()
	agentsimOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		agentsimBin = filepath.Join(binDir, "agentsim")
		cmd := exec.CommandContext(context.Background(), "go", "build", "-o", agentsimBin, "./e2e/cmd/agentsim")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			agentsimErr = err
			t.Logf("build agentsim: %s", out)
		}
	})
	if agentsimErr != nil {
		t.Fatalf("build agentsim: %v", agentsimErr)
	}
	ctl, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--hub-api", h.HTTPURL, "--admin-token", h.Token, "--prefix", prefix, "--count", "1", "--control-listen", ctl}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	p, err := harness.StartProc("agentsim-"+prefix, t.TempDir(), agentsimBin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return prefix + "-0"
}
