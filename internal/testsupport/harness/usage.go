package harness

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage is a process's resident memory and CPU time so far, read from
// /proc (Linux).
type Usage struct {
	RSS int64 // bytes (VmRSS)
	// RSSAnon and RSSFile split RSS into anonymous memory (heap, stacks)
	// and file-backed pages (mostly the mapped executable).
	RSSAnon, RSSFile int64
	CPU              time.Duration // user + system
	// ChildCPU is the user + system time of the children the process
	// waited for (exited git commands, for example); children still
	// running are not in it.
	ChildCPU time.Duration
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// ReadUsage reads the usage of process pid.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("usage of pid %d: %w", pid, err)
	}
	fields := map[string]*int64{"VmRSS:": &u.RSS, "RssAnon:": &u.RSSAnon, "RssFile:": &u.RSSFile}
	for _, line := range strings.Split(string(status), "\n") {
		for name, dst := range fields {
			rest, ok := strings.CutPrefix(line, name)
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return u, fmt.Errorf("usage of pid %d: %s %q: %w", pid, name, rest, err)
				}
				*dst = kb << 10
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("usage of pid %d: %w", pid, err)
	}
	// Fields after the command name (which may hold spaces) in parentheses;
	// utime and stime are fields 14 and 15 of the whole line.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, fmt.Errorf("usage of pid %d: malformed stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 15 {
		return u, fmt.Errorf("usage of pid %d: short stat", pid)
	}
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return u, fmt.Errorf("usage of pid %d: stat time %q: %w", pid, s, err)
		}
		u.CPU += time.Duration(n) * clockTick
	}
	// cutime and cstime are fields 16 and 17.
	for _, s := range f[13:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return u, fmt.Errorf("usage of pid %d: stat child time %q: %w", pid, s, err)
		}
		u.ChildCPU += time.Duration(n) * clockTick
	}
	return u, nil
}

// Usage reads the process's current usage.
func (p *Proc) Usage() (Usage, error) { return ReadUsage(p.PID()) }
