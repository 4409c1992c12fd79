package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// jobs runs the slow work of a reconcile (checkouts, renders, loading the
// definitions of the apps repo) in a bounded pool, each job under its own
// deadline. The reconcile asks for a job's result by key and never waits:
// a job not finished yet is started (once) and the caller keeps its last
// good state; when the job ends, done is called so that the next
// reconcile picks the result up.
type jobs struct {
	slots   chan struct{}
	timeout time.Duration
	retry   time.Duration // a failed result is run again after this long
	done    func()
	now     func() time.Time

	mu      sync.Mutex
	ctx     context.Context
	results map[string]jobResult
	running map[string]bool
	wg      sync.WaitGroup
}

type jobResult struct {
	v   any
	err error
	at  time.Time
	// final: the job ran out of its deadline; it is not run again for the
	// same inputs (work that ignores its context would pile up).
	final bool
}

func newJobs(workers int, timeout, retry time.Duration, done func()) *jobs {
	return &jobs{
		slots: make(chan struct{}, workers), timeout: timeout, retry: retry, done: done, now: time.Now,
		results: map[string]jobResult{}, running: map[string]bool{},
	}
}

// start sets the context the jobs run under (the first one wins).
func (j *jobs) start(ctx context.Context) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ctx == nil {
		j.ctx = ctx
	}
}

// get returns the result of the job key, starting fn when it has no result
// yet (or only a failed one older than the retry interval; a job stopped
// at its deadline is not retried). ok is false while the job runs.
func (j *jobs) get(key, what string, fn func(ctx context.Context) (any, error)) (v any, err error, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if r, found := j.results[key]; found && (r.err == nil || r.final || j.now().Sub(r.at) < j.retry) {
		return r.v, r.err, true
	}
	if !j.running[key] && j.ctx != nil {
		j.running[key] = true
		j.wg.Add(1)
		go j.run(j.ctx, key, what, fn)
	}
	return nil, nil, false
}

// retriable reports whether a failed result is kept that get runs again
// once it is older than the retry interval.
func (j *jobs) retriable() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.results {
		if r.err != nil && !r.final {
			return true
		}
	}
	return false
}

// keepOnly drops the results whose key is not in keep.
func (j *jobs) keepOnly(keep map[string]bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for k := range j.results {
		if !keep[k] {
			delete(j.results, k)
		}
	}
}

func (j *jobs) run(ctx context.Context, key, what string, fn func(ctx context.Context) (any, error)) {
	defer j.wg.Done()
	var r jobResult
	select {
	case j.slots <- struct{}{}:
		r = j.call(ctx, what, fn)
		<-j.slots
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	r.at = j.now()
	j.mu.Lock()
	delete(j.running, key)
	if ctx.Err() == nil {
		j.results[key] = r
	}
	j.mu.Unlock()
	j.done()
}

// call runs fn under the job deadline. A job that does not return by its
// deadline (work that ignores its context) is given up: its slot is freed
// and it is reported failed; its eventual result is dropped.
func (j *jobs) call(ctx context.Context, what string, fn func(ctx context.Context) (any, error)) jobResult {
	jctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	out := make(chan jobResult, 1)
	go func() {
		v, err := fn(jctx)
		out <- jobResult{v: v, err: err}
	}()
	var r jobResult
	select {
	case r = <-out:
	case <-jctx.Done():
		r.err = jctx.Err()
	}
	if r.err != nil && errors.Is(jctx.Err(), context.DeadlineExceeded) {
		r.final = true
		r.err = fmt.Errorf("%s: stopped after the deadline of %s: %w", what, j.timeout, r.err)
	}
	return r
}

// wait waits for the running jobs after their context ended, at most until
// ctx ends.
func (j *jobs) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		j.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
