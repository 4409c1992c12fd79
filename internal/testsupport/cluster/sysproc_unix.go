//go:build unix && !linux

package cluster

import "syscall"

// sysProcAttr puts a component in its own process group so Stop can kill it
// with everything it started. Only Linux also kills components when the test
// process dies (Pdeathsig); elsewhere a crashed test can leave them running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
