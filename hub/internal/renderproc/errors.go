package renderproc

import (
	"errors"
	"fmt"
)

// ErrLimit is wrapped by a LimitError.
var ErrLimit = errors.New("limit exceeded")

// ErrWorker is wrapped by errors about a worker process that could not be
// started or that ended without an answer for another reason than a limit.
var ErrWorker = errors.New("render worker")

// LimitError says which limit a request ran into. Its worker was killed.
type LimitError struct {
	// Limit is "time", "cpu", "memory" or "output".
	Limit string
	// Value is the limit, as set ("30s", "1Gi").
	Value string
	// Flag is the hub flag that sets the limit.
	Flag string
}

func (e *LimitError) Error() string {
	what := map[string]string{"time": "time limit", "cpu": "CPU time limit", "memory": "memory limit", "output": "output size limit"}[e.Limit]
	return fmt.Sprintf("stopped: exceeded the %s of %s (--%s)", what, e.Value, e.Flag)
}

func (e *LimitError) Unwrap() error { return ErrLimit }

// RemoteError is an error the worker's handler returned.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }
