package cluster

import "syscall"

// sysProcAttr puts a component in its own process group (so Stop can kill
// it with everything it started) and has the kernel kill it when the test
// process dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
