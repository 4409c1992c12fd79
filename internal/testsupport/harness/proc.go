package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/ports"
)

// Proc is a child process whose output is kept in a log file.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	logf    *os.File
	done    chan struct{}
	mu      sync.Mutex
	exitErr error
}

// StartProc starts bin with args and env (added to the test's), logging to
// dir/name.log. The child dies with the test process (Pdeathsig).
func StartProc(name, dir, bin string, args, env []string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, logf: f, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.exitErr
	default:
		return false, nil
	}
}

// Stop sends SIGTERM and waits up to 10 s, then kills.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process group and waits. A process that has
// already ended is left alone: its group id may belong to another process
// by now.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Tail returns the last n bytes of the log.
func (p *Proc) Tail(n int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Grep reports whether the log contains s.
func (p *Proc) Grep(s string) bool {
	b, _ := os.ReadFile(p.LogPath)
	return bytes.Contains(b, []byte(s))
}

// FreeAddr returns a free loopback host:port, reserved for this test process
// (see package ports: no other test process or outgoing connection takes it
// before the process it is meant for binds it).
func FreeAddr() (string, error) { return ports.Addr() }

// Eventually calls cond every interval until it returns nil or the timeout
// passes, and returns the last error.
func Eventually(ctx context.Context, timeout, interval time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, last)
		case <-t.C:
		}
	}
}

// BuildBinaries builds the hub (and flotilla-render), CLI and agent into dir from the module at
// root, with the race detector off. It is what `make build` does.
func BuildBinaries(ctx context.Context, root, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./hub/cmd/flotilla-hub", "./hub/cmd/flotilla-render", "./hub/cmd/flotilla", "./agent/cmd/flotilla-agent")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TestBinaries returns the folders a test package's TestMain needs, for
// the module at root: the flotilla binaries ($FLOTILLA_E2E_BIN_DIR, which
// the Makefile sets to bin/, else built once into a temporary folder that
// cleanup removes) and the control-plane binaries
// ($FLOTILLA_CONTROL_PLANE_BIN_DIR, else root/bin).
func TestBinaries(root string) (binDir, controlPlane string, cleanup func(), err error) {
	cleanup = func() {}
	controlPlane = os.Getenv("FLOTILLA_CONTROL_PLANE_BIN_DIR")
	if controlPlane == "" {
		controlPlane = filepath.Join(root, "bin")
	}
	binDir = os.Getenv("FLOTILLA_E2E_BIN_DIR")
	if binDir != "" {
		return binDir, controlPlane, cleanup, nil
	}
	dir, err := os.MkdirTemp("", "flotilla-test-bin-")
	if err != nil {
		return "", "", cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if err := BuildBinaries(context.Background(), root, dir); err != nil {
		cleanup()
		return "", "", func() {}, err
	}
	return dir, controlPlane, cleanup, nil
}
