package server

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultGCPercent is the hub's garbage collection target (GOGC). Most of a
// large hub's memory is long-lived per-agent state (TLS and HTTP/2
// connection state, goroutine stacks: ~45 KiB per connected agent), and
// Go's default of 100 lets the heap grow by as much again as that state
// before collecting. 50 halves that headroom; the collector then runs twice
// as often, which at 10,000 agents costs ~35 % more hub CPU per fanned-out
// commit (docs/performance-notes.md).
const DefaultGCPercent = 50

// memorySettings is what ApplyMemorySettings sets.
type memorySettings struct {
	GCPercent   int   // 0: left as it is
	MemoryLimit int64 // 0: left as it is
	Reasons     []string
}

// cgroupFiles hold the memory limit of the container the hub runs in
// (cgroup v2, then v1).
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// decideMemory works out the runtime's memory settings from the options,
// the environment (GOGC and GOMEMLIMIT win, as for any Go program) and the
// container's memory limit (cgroup, 0 when there is none).
func decideMemory(o Options, getenv func(string) string, cgroup int64) (memorySettings, error) {
	var m memorySettings
	switch {
	case getenv("GOGC") != "":
		m.Reasons = append(m.Reasons, "GOGC is set")
	case o.GCPercent > 0:
		m.GCPercent = o.GCPercent
	}
	switch {
	case getenv("GOMEMLIMIT") != "":
		m.Reasons = append(m.Reasons, "GOMEMLIMIT is set")
	case o.MemoryLimit != "":
		q, err := resource.ParseQuantity(o.MemoryLimit)
		if err != nil {
			return m, fmt.Errorf("--memory-limit %q: %w", o.MemoryLimit, err)
		}
		if q.Value() <= 0 {
			return m, fmt.Errorf("--memory-limit %q: must be positive", o.MemoryLimit)
		}
		m.MemoryLimit = q.Value()
	case cgroup > 0:
		// Leave a tenth of the container's limit for what the Go runtime
		// does not count (the mapped executable, C libraries: none) and
		// for the collector to catch up.
		m.MemoryLimit = cgroup / 10 * 9
		m.Reasons = append(m.Reasons, "memory limit from the container's")
	}
	return m, nil
}

// cgroupMemoryLimit returns the memory limit of the container the process
// runs in; 0 when there is none (or it cannot be read).
func cgroupMemoryLimit() int64 {
	for _, f := range cgroupFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		v, err := strconv.ParseInt(s, 10, 64)
		// cgroup v1 reports "no limit" as a huge page-rounded number.
		if err != nil || v <= 0 || v >= math.MaxInt64/2 {
			return 0
		}
		return v
	}
	return 0
}

// ApplyMemorySettings sets the Go runtime's GC percent and soft memory
// limit for the hub process. It changes process-wide state, so the
// command's main calls it, not Run (which tests start in their process).
func ApplyMemorySettings(o Options, log hclog.Logger) error {
	m, err := decideMemory(o, os.Getenv, cgroupMemoryLimit())
	if err != nil {
		return err
	}
	if m.GCPercent > 0 {
		debug.SetGCPercent(m.GCPercent)
	}
	if m.MemoryLimit > 0 {
		debug.SetMemoryLimit(m.MemoryLimit)
	}
	log.Info("memory settings", "gc_percent", m.GCPercent, "memory_limit", m.MemoryLimit, "notes", strings.Join(m.Reasons, "; "))
	return nil
}
