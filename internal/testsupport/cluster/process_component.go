package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a component gets after SIGTERM before SIGKILL.
const stopGrace = 3 * time.Second

// component is one control-plane process of a process cluster, running in
// its own process group with its output in logPath.
type component struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been reaped
	waitErr error         // valid after done
}

// startComponent starts bin with args in dir, output to dir/<name>.log. It
// calls onExit (from another goroutine) when the process ends.
func startComponent(dir, bin, name string, args []string, onExit func(*component)) (*component, error) {
	c := &component{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor

	c.cmd = exec.Command(bin, args...)
	c.cmd.Dir = dir
	c.cmd.Stdout = logFile
	c.cmd.Stderr = logFile
	// HOME points into the cluster directory so that no component reads or
	// writes the user's configuration (kwok looks at ~/.kwok).
	c.cmd.Env = append(os.Environ(), "HOME="+dir)
	c.cmd.SysProcAttr = sysProcAttr()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
		if onExit != nil {
			onExit(c)
		}
	}()
	return c, nil
}

// pid is the process id, which is also the process group id.
func (c *component) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has been reaped.
func (c *component) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill sends SIGTERM to the process group, SIGKILL to it after stopGrace or
// when ctx ends, and waits until the process is reaped. A group whose leader
// is already reaped is not signalled: its id may belong to another process
// by then (the control-plane binaries start no children).
func (c *component) kill(ctx context.Context) {
	if c.exited() {
		return
	}
	pgid := c.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-c.done
}

// tail returns up to the last n lines of the component's log.
func (c *component) tail(n int) string {
	const maxBytes = 64 << 10
	f, err := os.Open(c.logPath)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return fmt.Sprintf("(seek log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// dumpLogs writes the log tail of each component to w.
func dumpLogs(w io.Writer, cluster string, comps []*component, lines int) {
	for _, c := range comps {
		state := "running"
		if c.exited() {
			state = fmt.Sprintf("exited: %v", c.waitErr)
		}
		fmt.Fprintf(w, "==== cluster %s: %s (pid %d, %s), last %d lines of %s ====\n",
			cluster, c.name, c.pid(), state, lines, c.logPath)
		fmt.Fprintln(w, strings.TrimRight(c.tail(lines), "\n"))
	}
}
