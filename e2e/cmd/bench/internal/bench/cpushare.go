package bench

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// cpuShare takes the CPU time of a set of named processes at two moments,
// to show where a phase's CPU went (Flotilla's processes, the test
// cluster's components, the bench itself).
type cpuShare struct {
	names  map[int]string
	before map[int]time.Duration
}

// newCPUShare starts counting for the processes named (name → pid).
func newCPUShare(procs map[string]int) *cpuShare {
	s := &cpuShare{names: map[int]string{}, before: map[int]time.Duration{}}
	for name, pid := range procs {
		s.names[pid] = name
		if u, err := harness.ReadUsage(pid); err == nil {
			s.before[pid] = u.CPU + u.ChildCPU
		}
	}
	return s
}

// since renders the CPU each process used since newCPUShare, largest
// first, with the share of the machine's cores over wall (the window's
// length).
func (s *cpuShare) since(wall time.Duration) string {
	type use struct {
		name string
		cpu  time.Duration
	}
	var uses []use
	var total time.Duration
	for pid, name := range s.names {
		t0, ok := s.before[pid]
		if !ok {
			continue
		}
		u, err := harness.ReadUsage(pid)
		if err != nil {
			continue
		}
		d := u.CPU + u.ChildCPU - t0
		total += d
		uses = append(uses, use{name, d})
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].cpu > uses[j].cpu })
	parts := make([]string, 0, len(uses))
	for _, u := range uses {
		parts = append(parts, fmt.Sprintf("%s %.1f s", u.name, u.cpu.Seconds()))
	}
	return fmt.Sprintf("%.1f CPU-s in %s of wall time on %d cores (%.0f %% of the machine): %s",
		total.Seconds(), secs(wall), runtime.NumCPU(), 100*total.Seconds()/(wall.Seconds()*float64(runtime.NumCPU())), strings.Join(parts, ", "))
}

// componentName names a test-cluster process by its command (etcd,
// kube-apiserver, ...).
func componentName(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return fmt.Sprintf("pid %d", pid)
	}
	return strings.TrimSpace(string(raw))
}
