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

// TreeUsage is the usage of a process and of its descendants alive at the
// moment it is read (render workers, git commands...).
type TreeUsage struct {
	// Usage sums the process's and its descendants' RSS (and its split)
	// and CPU; ChildCPU is the process's own (exited children).
	Usage
	// Own is the process alone.
	Own Usage
	// Descendants counts the descendant processes alive; DescendantRSS
	// is their share of RSS.
	Descendants   int
	DescendantRSS int64
}

// ReadTreeUsage reads the usage of process pid and of every descendant
// process alive now (found through the parent of each process in /proc).
// A descendant that exits while it is read is left out.
func ReadTreeUsage(pid int) (TreeUsage, error) {
	own, err := ReadUsage(pid)
	if err != nil {
		return TreeUsage{}, err
	}
	t := TreeUsage{Usage: own, Own: own}
	for _, d := range descendants(pid) {
		u, err := ReadUsage(d)
		if err != nil {
			continue // exited meanwhile
		}
		t.Descendants++
		t.DescendantRSS += u.RSS
		t.RSS += u.RSS
		t.RSSAnon += u.RSSAnon
		t.RSSFile += u.RSSFile
		t.CPU += u.CPU
	}
	return t, nil
}

// descendants lists the processes below pid, read from /proc/*/stat.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// TreeUsage reads the usage of the process and its live descendants.
func (p *Proc) TreeUsage() (TreeUsage, error) { return ReadTreeUsage(p.PID()) }
