package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/ports"
)

// pollInterval is the period of readiness checks.
const pollInterval = 100 * time.Millisecond

// waitFor calls cond every pollInterval until it reports true. It fails when
// ctx ends (with cond's last error, if any) or when dead is closed because a
// component exited.
func waitFor(ctx context.Context, what string, dead <-chan struct{}, cond func(ctx context.Context) (bool, error)) error {
	// A check in flight is cancelled too when a component exits.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if dead != nil {
		go func() {
			select {
			case <-dead:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		last = err
		select {
		case <-dead:
			return fmt.Errorf("wait for %s: %w", what, ErrComponentExited)
		default:
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("wait for %s: %w (last check: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-dead:
			return fmt.Errorf("wait for %s: %w", what, ErrComponentExited)
		case <-t.C:
		}
	}
}

// pickPorts is freePorts; tests replace it to hand out a taken port.
var pickPorts = freePorts

// freePorts returns n distinct free TCP ports on 127.0.0.1, reserved for
// this process (package ports): no other test process and no outgoing
// connection takes one before the component binds it.
func freePorts(n int) ([]int, error) {
	out := make([]int, 0, n)
	for range n {
		p, err := ports.Reserve()
		if err != nil {
			return nil, fmt.Errorf("find free port on 127.0.0.1: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}
