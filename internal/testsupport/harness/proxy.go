package harness

import (
	"net"
	"sync"
	"time"
)

// Proxy is a TCP proxy a test controls, put between an agent and the hub
// (or the cluster's API server) to drop and delay the link. TLS passes
// through untouched: the proxy sees only bytes.
type Proxy struct {
	// Addr is the host:port to dial instead of the target.
	Addr   string
	target string
	lis    net.Listener

	mu      sync.Mutex
	drop    bool
	latency time.Duration
	conns   map[net.Conn]struct{}
	accepts int
	closed  bool
	wg      sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards every connection
// to target.
func StartProxy(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: lis.Addr().String(), target: target, lis: lis, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// SetDrop with true closes every open connection and refuses new ones (they
// are accepted and closed at once, as a broken middlebox does); false lets
// connections through again.
func (p *Proxy) SetDrop(drop bool) {
	p.mu.Lock()
	p.drop = drop
	var open []net.Conn
	if drop {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

// SetLatency delays every chunk of bytes by d in each direction (0: none).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Accepted returns how many connections were let through so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepts
}

// Close stops listening, closes every connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.lis.Close()
	p.SetDrop(true)
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.drop || p.closed {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.drop || p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.accepts++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst, each chunk delivered the current latency after
// it was read (a delay line: latency, not a bandwidth limit), and closes
// both ends when either side ends.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.at); d > 0 {
				// Simulated network delay, not a poll: the bytes are
				// held until they are due, as on a long link.
				t := time.NewTimer(d)
				<-t.C
			}
			if _, err := dst.Write(c.b); err != nil {
				_ = src.Close()
				for range q { // drain so the reader never blocks
				}
				return
			}
		}
	}()
	defer func() {
		close(q)
		<-done
		_ = src.Close()
		_ = dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.latency
			p.mu.Unlock()
			q <- chunk{b: buf[:n], at: time.Now().Add(d)}
		}
		if err != nil {
			return // EOF or a closed connection: the link is gone either way
		}
	}
}
