package harness

import (
	"io"
	"net"
	"sync"
	"time"
)

// Balancer spreads TCP connections over several backends round-robin, as
// a Service does over its pods: one address for the agents of several hub
// replicas. A backend that refuses the connection (a killed replica) is
// skipped for the next one, as a Service's endpoints drop a dead pod. TLS
// passes through untouched.
type Balancer struct {
	// Addr is the host:port to dial.
	Addr string
	lis  net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// StartBalancer listens on a free loopback port; add backends with Add.
func StartBalancer() (*Balancer, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Balancer{Addr: lis.Addr().String(), lis: lis, conns: map[net.Conn]struct{}{}}
	b.wg.Go(b.serve)
	return b, nil
}

// Add puts backend (host:port) in the rotation.
func (b *Balancer) Add(backend string) {
	b.mu.Lock()
	b.backends = append(b.backends, backend)
	b.mu.Unlock()
}

// Close stops listening, closes every open connection and waits for
// their pipes to end.
func (b *Balancer) Close() {
	_ = b.lis.Close()
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// track records c as open (false once closed: c is closed at once).
func (b *Balancer) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Balancer) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

func (b *Balancer) serve() {
	for {
		c, err := b.lis.Accept()
		if err != nil {
			return
		}
		b.wg.Go(func() { b.forward(c) })
	}
}

// forward pipes c to the next backend that accepts it; when either side
// ends, both are closed.
func (b *Balancer) forward(c net.Conn) {
	defer c.Close()
	if !b.track(c) {
		return
	}
	defer b.untrack(c)
	b.mu.Lock()
	backends, start := append([]string(nil), b.backends...), b.next
	b.next++
	b.mu.Unlock()
	for i := range backends {
		up, err := net.DialTimeout("tcp", backends[(start+i)%len(backends)], 2*time.Second)
		if err != nil {
			continue
		}
		defer up.Close()
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
		go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
		<-done
		return
	}
}
