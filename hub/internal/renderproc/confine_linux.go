package renderproc

import (
	"fmt"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// setLimits applies the worker's resource limits to itself.
func setLimits(cfg workerConfig) error {
	for _, l := range []struct {
		name     string
		resource int
		value    uint64
	}{
		{"RLIMIT_CORE", unix.RLIMIT_CORE, 0},
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, cfg.Files},
		{"RLIMIT_DATA", unix.RLIMIT_DATA, cfg.Memory},
	} {
		if err := unix.Setrlimit(l.resource, &unix.Rlimit{Cur: l.value, Max: l.value}); err != nil {
			return fmt.Errorf("%s %d: %w", l.name, l.value, err)
		}
	}
	return nil
}

// limitCPU lets the process use sec more seconds of CPU time from now:
// the kernel sends SIGXCPU past that (Serve exits on it). The hard limit
// stays as it is, so that the next request can move the soft one again.
func limitCPU(sec uint64) error {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return fmt.Errorf("getrusage: %w", err)
	}
	used := uint64(ru.Utime.Sec + ru.Stime.Sec + 1)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &rl); err != nil {
		return fmt.Errorf("RLIMIT_CPU: %w", err)
	}
	rl.Cur = used + sec
	if rl.Max != unix.RLIM_INFINITY && rl.Cur > rl.Max {
		rl.Cur = rl.Max
	}
	if err := unix.Setrlimit(unix.RLIMIT_CPU, &rl); err != nil {
		return fmt.Errorf("RLIMIT_CPU %d: %w", rl.Cur, err)
	}
	return nil
}

// confine restricts the process with Landlock, as far as the kernel
// supports it: reads under dirs only, no writes, no TCP bind or connect.
// It returns the ABI version enforced, or 0 and why not.
func confine(dirs []string) (int, string) {
	abi, err := llsys.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		return 0, fmt.Sprintf("Landlock is not available in this kernel: %v", err)
	}
	if len(dirs) == 0 {
		return 0, "no folders to allow"
	}
	if err := landlock.V7.BestEffort().Restrict(landlock.RODirs(dirs...)); err != nil {
		return 0, err.Error()
	}
	return min(abi, 7), ""
}

// sysProcAttr returns the attributes a worker is started with: its own
// process group (killed as a whole) and, with namespaces, its own user and
// network namespaces, mapping the hub's user and group to 65534 inside.
func sysProcAttr(namespaces bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if namespaces {
		a.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 65534, HostID: syscall.Getuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 65534, HostID: syscall.Getgid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}
