package controller

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A job that ignores its context is given up at its deadline: its slot is
// freed for the next job, it is reported failed, and it is not started
// again for the same inputs.
func TestJobsStuckJobFreesItsSlot(t *testing.T) {
	done := make(chan struct{}, 16)
	j := newJobs(1, 50*time.Millisecond, time.Hour, func() { done <- struct{}{} })
	j.start(t.Context())
	never := make(chan struct{})
	defer close(never)
	var starts atomic.Int32
	stuck := func(context.Context) (any, error) {
		starts.Add(1)
		<-never // ignores ctx
		return nil, nil
	}
	if _, _, ok := j.get("stuck", "render stuck", stuck); ok {
		t.Fatal("a job has a result before it ran")
	}
	if _, _, ok := j.get("stuck", "render stuck", stuck); ok {
		t.Fatal("a running job has a result")
	}
	<-done
	_, err, ok := j.get("stuck", "render stuck", stuck)
	if !ok || err == nil || !strings.Contains(err.Error(), "render stuck: stopped after the deadline") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stuck job: ok %v err %v", ok, err)
	}
	// The one slot serves the next job.
	_, _, _ = j.get("good", "render good", func(context.Context) (any, error) { return "bundle", nil }) // starts it
	<-done
	v, err, ok := j.get("good", "render good", nil)
	if !ok || err != nil || v != "bundle" {
		t.Fatalf("good job after a stuck one: %v %v %v", v, err, ok)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("stuck job started %d times, want 1", n)
	}
}

// A failed job is run again after the retry interval, not before.
func TestJobsRetryFailedAfterInterval(t *testing.T) {
	done := make(chan struct{}, 16)
	j := newJobs(2, time.Minute, time.Hour, func() { done <- struct{}{} })
	now := time.Unix(1000, 0)
	j.now = func() time.Time { return now }
	j.start(t.Context())
	var calls atomic.Int32
	fail := func(context.Context) (any, error) { calls.Add(1); return nil, errors.New("boom") }
	_, _, _ = j.get("k", "render", fail) // starts it
	<-done
	if _, err, ok := j.get("k", "render", fail); !ok || err == nil {
		t.Fatalf("failed job: %v %v", err, ok)
	}
	now = now.Add(2 * time.Hour)
	if _, _, ok := j.get("k", "render", fail); ok {
		t.Fatal("a failed job past the retry interval was not started again")
	}
	<-done
	if n := calls.Load(); n != 2 {
		t.Fatalf("calls %d, want 2", n)
	}
}
