package harness

import (
	"os"
	"os/exec"
	"testing"
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
