package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestReadUsageChildCPU: the CPU time of a child this process waited for
// shows in ChildCPU, not in CPU's share of it.
func TestReadUsageChildCPU(t *testing.T) {
	before, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 {
		t.Errorf("RSS %d, want > 0", before.RSS)
	}
	// A child that burns CPU (well over one 10 ms clock tick), waited for.
	if out, err := exec.Command("sh", "-c", `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done`).CombinedOutput(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	after, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.ChildCPU <= before.ChildCPU {
		t.Errorf("ChildCPU %s after a CPU-bound child, was %s before", after.ChildCPU, before.ChildCPU)
	}
}

// TestReadTreeUsageCountsLiveChildren: a running child (and its own child)
// is counted in the tree's RSS, and no longer once it has exited.
func TestReadTreeUsageCountsLiveChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sleep 60 & read x; kill $!`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var tu TreeUsage
	err = Eventually(context.Background(), 30*time.Second, 10*time.Millisecond, func() error {
		var err error
		if tu, err = ReadTreeUsage(os.Getpid()); err != nil || tu.Descendants >= 2 {
			return err
		}
		return fmt.Errorf("%d descendants", tu.Descendants)
	})
	if err != nil {
		t.Fatalf("want the shell and its sleep: %v", err)
	}
	if tu.DescendantRSS <= 0 || tu.RSS != tu.Own.RSS+tu.DescendantRSS {
		t.Errorf("RSS %d, own %d, descendants %d: want own + descendants, descendants > 0", tu.RSS, tu.Own.RSS, tu.DescendantRSS)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	tu, err = ReadTreeUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if tu.Descendants != 0 {
		t.Errorf("%d descendants after the child exited, want 0", tu.Descendants)
	}
}
