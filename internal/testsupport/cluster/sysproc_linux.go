package cluster

import "syscall"

// sysProcAttr puts a component in its own process group (so Stop can kill
// it with everything it started) and has the kernel kill it when the test
// process dies. Pdeathsig follows the OS thread that started the child; Go
// only ends threads of goroutines that exit while locked with
// runtime.LockOSThread, so do not call Create from such a goroutine.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
