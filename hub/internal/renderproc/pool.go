package renderproc

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Pool runs requests in worker processes, at most Options.Workers at once.
// The zero value is not usable; call New.
type Pool struct {
	opts Options
	log  hclog.Logger
	sem  chan struct{} // one token per worker process alive or starting
	idle chan *worker  // workers waiting for a request (some may have expired)

	mu         sync.Mutex
	closed     bool
	namespaces bool // start workers in their own user and network namespaces
	warned     bool // the Landlock warning was logged
}

// New returns a pool for opts (see DefaultOptions; call opts.Validate
// first). Workers start on demand.
func New(opts Options, log hclog.Logger) *Pool {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	d := DefaultOptions()
	if opts.Workers <= 0 {
		opts.Workers = d.Workers
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = d.IdleTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	if opts.CPU <= 0 {
		opts.CPU = d.CPU
	}
	if opts.Memory.IsZero() {
		opts.Memory = d.Memory
	}
	if opts.MaxOutput.IsZero() {
		opts.MaxOutput = d.MaxOutput
	}
	if opts.Files <= 0 {
		opts.Files = d.Files
	}
	return &Pool{
		opts: opts, log: log, namespaces: !opts.NoNamespaces,
		sem: make(chan struct{}, opts.Workers), idle: make(chan *worker, opts.Workers),
	}
}

// Confinement says how workers are confined.
type Confinement struct {
	// Namespaces: workers run in their own user and network namespaces.
	Namespaces bool
	// Landlock is the Landlock ABI version workers enforce (0: none).
	Landlock int
}

// Probe starts a worker (and keeps it idle), logs one warning for the
// confinement the kernel does not allow, and returns how workers are
// confined. An error means no worker could be started.
func (p *Pool) Probe(ctx context.Context) (Confinement, error) {
	w, err := p.acquire(ctx)
	if err != nil {
		return Confinement{}, err
	}
	c := Confinement{Namespaces: w.namespaces, Landlock: w.hello.Landlock}
	p.release(w)
	return c, nil
}

// Do sends req to a worker and returns its answer. Errors: ctx's error
// when ctx ended first (the worker is killed); a *LimitError when the
// request ran into a limit (the worker is killed); a *RemoteError when the
// handler returned an error; an error wrapping ErrWorker when no worker
// could be started or it died otherwise.
func (p *Pool) Do(ctx context.Context, req []byte) ([]byte, error) {
	w, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := w.do(ctx, req, p.opts.Limits)
	if w.dead() {
		p.drop(w)
	} else {
		p.release(w)
	}
	return resp, err
}

// Close stops the idle workers and makes Do fail; workers busy now are
// stopped when their request ends.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case w := <-p.idle:
			w.expire()
			p.drop(w)
		default:
			return
		}
	}
}

// acquire returns an idle worker, or starts one when fewer than Workers
// are alive, or waits for one of the two.
func (p *Pool) acquire(ctx context.Context) (*worker, error) {
	for {
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("%w: pool closed", ErrWorker)
		}
		select { // an idle worker first
		case w := <-p.idle:
			if w.claim() {
				return w, nil
			}
			p.drop(w) // expired while idle
			continue
		default:
		}
		select {
		case w := <-p.idle:
			if w.claim() {
				return w, nil
			}
			p.drop(w)
		case p.sem <- struct{}{}:
			w, err := p.start(ctx)
			if err != nil {
				<-p.sem
				return nil, err
			}
			return w, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release makes w idle; it exits after IdleTimeout unused.
func (p *Pool) release(w *worker) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.drop(w)
		return
	}
	w.setIdle(p.opts.IdleTimeout)
	p.idle <- w // never blocks: at most Workers workers exist
}

// drop stops w and frees its place.
func (p *Pool) drop(w *worker) {
	w.kill()
	<-p.sem
}

// start starts a worker, in namespaces while the kernel allows it.
func (p *Pool) start(ctx context.Context) (*worker, error) {
	argv := p.opts.Command
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWorker, err)
		}
		argv = []string{exe, WorkerArg}
	}
	p.mu.Lock()
	ns := p.namespaces
	p.mu.Unlock()
	w, err := startWorker(ctx, argv, p.opts, ns)
	if err != nil && ns && ctx.Err() == nil {
		p.mu.Lock()
		warn := p.namespaces
		p.namespaces = false
		p.mu.Unlock()
		if warn {
			p.log.Warn("render workers run without their own network namespace: the kernel refused one; Helm and Kustomize renders are kept off the network by Landlock only, where the kernel has it", "error", err)
		}
		w, err = startWorker(ctx, argv, p.opts, false)
	}
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	warn := !p.warned && w.hello.Landlock == 0 && len(p.opts.ReadDirs) > 0 // once
	if warn {
		p.warned = true
	}
	p.mu.Unlock()
	if warn {
		p.log.Warn("render workers run without Landlock: they can read every file the hub can", "reason", w.hello.LandlockError)
	}
	return w, nil
}
