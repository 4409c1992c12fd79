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
// cluster's components, the bench itself). Processes of one name (the
// API servers of several clusters, say) are summed.
type cpuShare struct {
	names  map[int]string
	before map[int]time.Duration
}

// newCPUShare starts counting for the processes named (name → pids).
func newCPUShare(procs map[string][]int) *cpuShare {
	s := &cpuShare{names: map[int]string{}, before: map[int]time.Duration{}}
	for name, pids := range procs {
		for _, pid := range pids {
			s.names[pid] = name
			if u, err := harness.ReadUsage(pid); err == nil {
				s.before[pid] = u.CPU + u.ChildCPU
			}
		}
	}
	return s
}

// used returns the CPU each name used since newCPUShare, largest first,
// and the total.
func (s *cpuShare) used() ([]nameCPU, time.Duration) {
	by := map[string]time.Duration{}
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
		by[name] += d
		total += d
	}
	out := make([]nameCPU, 0, len(by))
	for name, d := range by {
		out = append(out, nameCPU{name, d})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].cpu > out[j].cpu || out[i].cpu == out[j].cpu && out[i].name < out[j].name
	})
	return out, total
}

type nameCPU struct {
	name string
	cpu  time.Duration
}

// since renders the CPU each name used since newCPUShare, with the share
// of the machine's cores over wall (the window's length).
func (s *cpuShare) since(wall time.Duration) string {
	uses, total := s.used()
	parts := make([]string, 0, len(uses))
	for _, u := range uses {
		parts = append(parts, fmt.Sprintf("%s %.1f s", u.name, u.cpu.Seconds()))
	}
	return fmt.Sprintf("%.1f CPU-s in %s of wall time on %d cores (%.0f %% of the machine): %s",
		total.Seconds(), secs(wall), runtime.NumCPU(), 100*total.Seconds()/(wall.Seconds()*float64(runtime.NumCPU())), strings.Join(parts, ", "))
}

// per renders the CPU each name used since newCPUShare divided by n (per
// commit, say).
func (s *cpuShare) per(n int) string {
	uses, total := s.used()
	parts := make([]string, 0, len(uses))
	for _, u := range uses {
		parts = append(parts, fmt.Sprintf("%s %s", u.name, secs(u.cpu/time.Duration(n))))
	}
	return fmt.Sprintf("%s in all: %s", secs(total/time.Duration(n)), strings.Join(parts, ", "))
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
