//go:build !unit

package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envLeakChild marks the child process of TestNoLeakWhenTestProcessDies.
const envLeakChild = "FLOTILLA_CLUSTER_LEAK_CHILD"

// TestNoLeakWhenTestProcessDies runs a test binary that starts a cluster,
// kills that binary with SIGKILL (so no cleanup runs) and checks that the
// kernel took the cluster's processes down with it (Pdeathsig).
func TestNoLeakWhenTestProcessDies(t *testing.T) {
	if os.Getenv(envLeakChild) == "1" {
		leakChild(t)
		return
	}
	skipUnlessProcess(t)
	if testing.Short() {
		t.Skip("starts a control plane; run without -short")
	}
	workDir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestNoLeakWhenTestProcessDies$", "-test.v")
	cmd.Env = append(os.Environ(), envLeakChild+"=1", "FLOTILLA_E2E_BIN_DIR="+testBinDir(t), "FLOTILLA_CLUSTER_LEAK_WORKDIR="+workDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait() //nolint:errcheck // killed below; its exit status is not the subject

	var pids []int
	s := bufio.NewScanner(out)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "PIDS "); ok {
			for _, f := range strings.Fields(rest) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("child printed bad pid %q", f)
				}
				pids = append(pids, pid)
			}
			break
		}
	}
	if len(pids) == 0 {
		t.Fatalf("child exited without starting a cluster (scan: %v)", s.Err())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// The kernel sends SIGKILL as the parent dies; allow for slow reaping.
	gone, cancelGone := context.WithTimeout(ctx, 20*time.Second)
	defer cancelGone()
	err = waitFor(gone, "cluster processes gone after their parent died", nil, func(context.Context) (bool, error) {
		for _, pid := range pids {
			if alive(pid) {
				return false, fmt.Errorf("pid %d still alive", pid)
			}
		}
		return true, nil
	})
	if err != nil {
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL) // do not leak them from this test either
		}
		t.Fatal(err)
	}
}

// leakChild starts a minimal cluster, prints its PIDs and waits to be killed.
func leakChild(t *testing.T) {
	p := &ProcessProvider{BinDir: testBinDir(t), WorkDir: os.Getenv("FLOTILLA_CLUSTER_LEAK_WORKDIR")}
	c, err := p.Create(t.Context(), "leak")
	if err != nil {
		t.Fatal(err)
	}
	pc := c.(*ProcessCluster)
	var fields []string
	for _, pid := range pc.PIDs() {
		fields = append(fields, strconv.Itoa(pid))
	}
	fmt.Printf("PIDS %s\n", strings.Join(fields, " "))
	<-t.Context().Done() // the parent kills this process
}

// alive reports whether pid exists and is not a zombie waiting for a reaper.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may contain spaces, so split after ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}
