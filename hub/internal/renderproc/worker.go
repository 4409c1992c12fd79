package renderproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Worker states.
const (
	stateBusy int32 = iota
	stateIdle
	stateExpired
)

// worker is one worker process.
type worker struct {
	cmd        *exec.Cmd
	stdin      *os.File
	frames     chan frame // answers, closed when stdout ends
	exited     chan struct{}
	stderr     *tail
	hello      hello
	namespaces bool

	state     atomic.Int32
	idleTimer *time.Timer
	killOnce  sync.Once
}

type frame struct {
	status  byte
	payload []byte
	err     error // set on the last frame when reading failed
}

// startWorker starts argv as a worker and reads its hello.
func startWorker(ctx context.Context, argv []string, o Options, namespaces bool) (*worker, error) {
	cfg, _ := json.Marshal(workerConfig{
		CPUSeconds: uint64((o.CPU + time.Second - 1) / time.Second),
		Memory:     uint64(o.Memory.Value()),
		Files:      uint64(o.Files),
		MaxOutput:  o.MaxOutput.Value(),
		ReadDirs:   o.ReadDirs,
	})
	env := append([]string{
		configEnv + "=" + string(cfg),
		fmt.Sprintf("GOMEMLIMIT=%d", o.Memory.Value()/4*3),
	}, o.Env...)
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWorker, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("%w: %w", ErrWorker, err)
	}
	w := &worker{
		stdin: inW, frames: make(chan frame, 1), exited: make(chan struct{}),
		stderr: &tail{max: 4 << 10}, namespaces: namespaces,
	}
	w.cmd = exec.Command(argv[0], argv[1:]...)
	w.cmd.Env = env
	w.cmd.Dir = "/"
	w.cmd.Stdin, w.cmd.Stdout, w.cmd.Stderr = inR, outW, w.stderr
	w.cmd.SysProcAttr = sysProcAttr(namespaces)
	err = w.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("%w: start %s: %w", ErrWorker, argv[0], err)
	}
	go func() {
		_ = w.cmd.Wait()
		close(w.exited)
	}()
	go w.read(outR, o.MaxOutput.Value())

	t := time.NewTimer(o.Timeout)
	defer t.Stop()
	select {
	case f, ok := <-w.frames:
		if ok && f.err == nil {
			if err := json.Unmarshal(f.payload, &w.hello); err == nil {
				return w, nil
			}
		}
		w.kill()
		return nil, fmt.Errorf("%w: no hello from %s: %s", ErrWorker, argv[0], w.stderr.lastLine())
	case <-t.C:
		w.kill()
		return nil, fmt.Errorf("%w: %s did not start within %s", ErrWorker, argv[0], o.Timeout)
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

// read passes the frames of stdout on, until it ends.
func (w *worker) read(r *os.File, max int64) {
	defer close(w.frames)
	defer r.Close()
	for {
		st, payload, err := readFrame(r, max)
		if err != nil {
			w.frames <- frame{err: err}
			return
		}
		w.frames <- frame{status: st, payload: payload}
	}
}

// do sends one request and waits for its answer, killing the worker when
// a limit or ctx ends first.
func (w *worker) do(ctx context.Context, req []byte, l Limits) ([]byte, error) {
	if err := writeFrame(w.stdin, statusOK, req); err != nil {
		return nil, w.died(fmt.Errorf("send request: %w", err), l)
	}
	t := time.NewTimer(l.Timeout)
	defer t.Stop()
	select {
	case f, ok := <-w.frames:
		switch {
		case !ok:
			return nil, w.died(errors.New("no answer"), l)
		case f.err != nil:
			var tl errTooLarge
			if errors.As(f.err, &tl) {
				w.kill()
				return nil, &LimitError{Limit: "output", Value: l.MaxOutput.String(), Flag: FlagMaxOutput}
			}
			return nil, w.died(f.err, l)
		case f.status == statusOK:
			return f.payload, nil
		case f.status == statusTooLarge:
			return nil, &LimitError{Limit: "output", Value: l.MaxOutput.String(), Flag: FlagMaxOutput}
		default:
			return nil, &RemoteError{Msg: string(f.payload)}
		}
	case <-w.exited:
		return nil, w.died(errors.New("exited"), l)
	case <-t.C:
		w.kill()
		return nil, &LimitError{Limit: "time", Value: l.Timeout.String(), Flag: FlagTimeout}
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

// died waits for the worker's end and says why it ended.
func (w *worker) died(cause error, l Limits) error {
	w.kill()
	ps := w.cmd.ProcessState
	if ps != nil && ps.ExitCode() == exitCPU {
		return &LimitError{Limit: "cpu", Value: l.CPU.String(), Flag: FlagCPU}
	}
	// The Go runtime's words when an allocation or, with cgo, a thread
	// stack is refused: both are RLIMIT_DATA.
	if msg := w.stderr.String(); strings.Contains(msg, "out of memory") || strings.Contains(msg, "pthread_create failed") {
		return &LimitError{Limit: "memory", Value: l.Memory.String(), Flag: FlagMemory}
	}
	if ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGXCPU {
			return &LimitError{Limit: "cpu", Value: l.CPU.String(), Flag: FlagCPU}
		}
	}
	return fmt.Errorf("%w: %v (%v): %s", ErrWorker, cause, ps, w.stderr.lastLine())
}

// dead reports whether the worker was killed or exited.
func (w *worker) dead() bool {
	select {
	case <-w.exited:
		return true
	default:
		return w.state.Load() == stateExpired
	}
}

// claim takes an idle worker for a request; false if it expired.
func (w *worker) claim() bool {
	if !w.state.CompareAndSwap(stateIdle, stateBusy) {
		return false
	}
	w.idleTimer.Stop()
	return !w.dead()
}

// setIdle marks w idle; it is killed after d unless claimed first.
func (w *worker) setIdle(d time.Duration) {
	w.state.Store(stateIdle)
	w.idleTimer = time.AfterFunc(d, w.expire)
}

// expire kills w if it is idle.
func (w *worker) expire() {
	if w.state.CompareAndSwap(stateIdle, stateExpired) {
		w.kill()
	}
}

// kill kills the worker's process group and waits for its end.
func (w *worker) kill() {
	w.killOnce.Do(func() {
		w.stdin.Close()
		select {
		case <-w.exited:
		default:
			// The group id is the worker's pid (Setpgid); it is ours until
			// Wait has reaped the worker, which it has not yet.
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	<-w.exited
}

// tail keeps the first and the last max bytes written to it: a Go crash
// says what it is in its first line, then dumps every goroutine.
type tail struct {
	mu         sync.Mutex
	max        int
	head, last []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	written := len(p)
	if n := min(t.max-len(t.head), len(p)); n > 0 {
		t.head = append(t.head, p[:n]...)
		p = p[n:]
	}
	t.last = append(t.last, p...)
	if len(t.last) > t.max {
		t.last = append([]byte(nil), t.last[len(t.last)-t.max:]...)
	}
	return written, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.head) + string(t.last)
}

// lastLine returns the first line of a Go crash ("fatal error: ...",
// "panic: ...", "runtime...: ...") or else the last line written.
func (t *tail) lastLine() string {
	s := strings.TrimSpace(t.String())
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "fatal error:") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "runtime") {
			return l
		}
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "no output"
	}
	return string(bytes.TrimSpace([]byte(s)))
}
