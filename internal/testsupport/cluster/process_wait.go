package cluster

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
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

// reserved holds the ports handed out by freePorts in this process, so that
// clusters created concurrently never get the same port.
var reserved = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// pickPorts is freePorts; tests replace it to hand out a taken port.
var pickPorts = freePorts

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are free
// when returned; a process outside this test binary could still take one
// before the component binds it, which then fails cluster creation with the
// component's "address already in use" in the error.
func freePorts(n int) ([]int, error) {
	reserved.Lock()
	defer reserved.Unlock()
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, l)
		p := l.Addr().(*net.TCPAddr).Port
		if reserved.ports[p] {
			continue
		}
		reserved.ports[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}
