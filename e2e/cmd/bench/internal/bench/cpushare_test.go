package bench

import (
	"os"
	"strings"
	"testing"
)

// TestCPUShareSumsByName: processes of one name are counted under it once
// each, a process that does not exist is left out, and the total is the
// sum over the names.
func TestCPUShareSumsByName(t *testing.T) {
	s := newCPUShare(map[string][]int{"both": {os.Getpid(), os.Getppid()}, "gone": {1 << 30}})
	if len(s.names) != 3 || len(s.before) != 2 {
		t.Fatalf("counting %d processes, %d with a start value; want 3 and 2", len(s.names), len(s.before))
	}
	for i := 0; i < 2_000_000; i++ { // use a little CPU
		_ = strings.Repeat("x", i%7)
	}
	uses, total := s.used()
	if len(uses) != 1 || uses[0].name != "both" {
		t.Fatalf("uses: %+v, want only \"both\"", uses)
	}
	if uses[0].cpu != total || total < 0 {
		t.Errorf("total %s, the one name %s", total, uses[0].cpu)
	}
	if got := s.per(4); !strings.Contains(got, " in all: both ") {
		t.Errorf("per: %q", got)
	}
	if got := s.since(total); !strings.Contains(got, "of the machine): both ") {
		t.Errorf("since: %q", got)
	}
}
