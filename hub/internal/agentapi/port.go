package agentapi

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"
)

// The agent port serves two kinds of client on one address: enrolled agents,
// whose TLS handshake verified a client certificate of the hub CA, and
// everyone else (an agent enrolling, a scanner, an attacker). The port does
// the TLS handshake itself, under a deadline and within connection limits,
// and hands each connection to one of two gRPC servers: the agents' server,
// with the large message limits bundles and statuses need, or the enrolment
// server, whose limits fit a certificate request. gRPC checks a message's
// length against the server's receive limit before it allocates the
// message, so a client without a certificate can never make the hub
// allocate more than the enrolment limit per stream.

// Limits bound what the agent port admits. Zero fields take the defaults of
// DefaultLimits.
type Limits struct {
	// MaxConns bounds all connections, authenticated or not, including
	// those still in their TLS handshake.
	MaxConns int
	// MaxUnauthenticatedConns bounds connections without a verified client
	// certificate: in their handshake, or served by the enrolment server.
	MaxUnauthenticatedConns int
	// MaxUnauthenticatedConnsPerIP bounds those per source address.
	// Authenticated connections are not counted per address: many
	// clusters may reach the hub through one NAT address.
	MaxUnauthenticatedConnsPerIP int
	// HandshakeTimeout bounds a TLS handshake.
	HandshakeTimeout time.Duration
	// UnauthenticatedIdle closes a connection without a certificate that
	// has had no call in flight for this long.
	UnauthenticatedIdle time.Duration
	// UnauthenticatedMaxAge closes a connection without a certificate
	// after this long, calls or not (with a grace of a tenth more).
	UnauthenticatedMaxAge time.Duration
	// AuthenticatedIdle closes an agent's connection that has had no
	// stream for this long (an agent holds its Connect stream open).
	AuthenticatedIdle time.Duration
	// EnrollMessageBytes is the receive limit of the enrolment server: an
	// EnrollRequest carries a CSR of well under a KiB.
	EnrollMessageBytes int
	// EnrollRate and EnrollBurst limit Enroll calls per source address.
	EnrollRate  rate.Limit
	EnrollBurst int
	// MaxStreamsPerConn bounds concurrent streams on one connection
	// (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
	MaxStreamsPerConn uint32
}

// DefaultLimits returns the defaults, in one place.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:                     16384,
		MaxUnauthenticatedConns:      1024,
		MaxUnauthenticatedConnsPerIP: 64,
		HandshakeTimeout:             10 * time.Second,
		UnauthenticatedIdle:          30 * time.Second,
		UnauthenticatedMaxAge:        2 * time.Minute,
		AuthenticatedIdle:            5 * time.Minute,
		EnrollMessageBytes:           64 << 10,
		EnrollRate:                   rate.Every(time.Second),
		EnrollBurst:                  10,
		MaxStreamsPerConn:            16,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	if l.MaxUnauthenticatedConns <= 0 {
		l.MaxUnauthenticatedConns = d.MaxUnauthenticatedConns
	}
	if l.MaxUnauthenticatedConnsPerIP <= 0 {
		l.MaxUnauthenticatedConnsPerIP = d.MaxUnauthenticatedConnsPerIP
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = d.HandshakeTimeout
	}
	if l.UnauthenticatedIdle <= 0 {
		l.UnauthenticatedIdle = d.UnauthenticatedIdle
	}
	if l.UnauthenticatedMaxAge <= 0 {
		l.UnauthenticatedMaxAge = d.UnauthenticatedMaxAge
	}
	if l.AuthenticatedIdle <= 0 {
		l.AuthenticatedIdle = d.AuthenticatedIdle
	}
	if l.EnrollMessageBytes <= 0 {
		l.EnrollMessageBytes = d.EnrollMessageBytes
	}
	if l.EnrollRate <= 0 {
		l.EnrollRate = d.EnrollRate
	}
	if l.EnrollBurst <= 0 {
		l.EnrollBurst = d.EnrollBurst
	}
	if l.MaxStreamsPerConn == 0 {
		l.MaxStreamsPerConn = d.MaxStreamsPerConn
	}
	return l
}

// port accepts connections on the agent address, admits them within the
// limits, does their TLS handshake and routes them to the agents' listener
// (a verified client certificate) or the enrolment listener (none).
type port struct {
	inner  net.Listener
	tlsCfg *tls.Config
	lim    Limits
	log    hclog.Logger
	refuse *rate.Limiter   // of the log line about refused connections
	ctx    context.Context // ends handshakes when the port closes
	cancel context.CancelFunc

	agents, enroll *chanListener

	mu      sync.Mutex
	total   int
	unauth  int
	perIP   map[string]int
	closed  bool
	pending sync.WaitGroup // handshakes in flight
}

func newPort(inner net.Listener, tlsCfg *tls.Config, lim Limits, log hclog.Logger) *port {
	p := &port{inner: inner, tlsCfg: tlsCfg, lim: lim, log: log, perIP: map[string]int{},
		refuse: rate.NewLimiter(rate.Every(10*time.Second), 1)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.agents = newChanListener(inner.Addr())
	p.enroll = newChanListener(inner.Addr())
	return p
}

// run accepts until the inner listener is closed.
func (p *port) run() error {
	defer func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		p.pending.Wait()
		p.agents.close()
		p.enroll.close()
	}()
	for {
		c, err := p.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		ip := remoteIP(c)
		if !p.admit(ip) {
			if p.refuse.Allow() {
				p.log.Warn("agent port connection refused: over the connection limits", "peer", c.RemoteAddr().String())
			}
			c.Close()
			continue
		}
		p.pending.Add(1)
		go p.handshake(c, ip)
	}
}

// admit counts a new connection from ip, unauthenticated until its
// handshake shows otherwise; false if it is over a limit.
func (p *port) admit(ip string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.total >= p.lim.MaxConns || p.unauth >= p.lim.MaxUnauthenticatedConns || p.perIP[ip] >= p.lim.MaxUnauthenticatedConnsPerIP {
		return false
	}
	p.total++
	p.unauth++
	p.perIP[ip]++
	return true
}

// authenticated moves a connection from ip out of the unauthenticated
// counts.
func (p *port) authenticated(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unauth--
	p.dropIPLocked(ip)
}

func (p *port) dropIPLocked(ip string) {
	if p.perIP[ip]--; p.perIP[ip] <= 0 {
		delete(p.perIP, ip)
	}
}

// release forgets a closed connection.
func (p *port) release(ip string, authed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total--
	if !authed {
		p.unauth--
		p.dropIPLocked(ip)
	}
}

// handshake runs c's TLS handshake under the handshake timeout and hands
// the connection on.
func (p *port) handshake(raw net.Conn, ip string) {
	defer p.pending.Done()
	tc := tls.Server(raw, p.tlsCfg)
	ctx, cancel := context.WithTimeout(p.ctx, p.lim.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		lvl := hclog.Warn
		if errors.Is(err, io.EOF) {
			lvl = hclog.Debug // a TCP probe
		}
		p.log.Log(lvl, "TLS handshake refused", "peer", raw.RemoteAddr().String(), "error", err)
		tc.Close()
		p.release(ip, false)
		return
	}
	authed := len(tc.ConnectionState().VerifiedChains) > 0
	if authed {
		p.authenticated(ip)
	}
	c := &portConn{Conn: tc, tls: tc}
	c.release = func() { p.release(ip, authed) }
	dst := p.enroll
	if authed {
		dst = p.agents
	}
	if !dst.deliver(p.ctx, c) {
		c.Close()
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// portConn is an admitted connection after its handshake; Close releases
// its place in the limits once.
type portConn struct {
	net.Conn
	tls     *tls.Conn
	once    sync.Once
	release func()
}

// ConnectionState returns the TLS state (see handshakenCreds).
func (c *portConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// Close implements net.Conn.
func (c *portConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// chanListener is a net.Listener whose connections come from the port.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to Accept; false once the listener is closed.
func (l *chanListener) deliver(ctx context.Context, c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// Accept implements net.Listener.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener. gRPC closes its listeners when it stops.
func (l *chanListener) Close() error {
	l.close()
	return nil
}

func (l *chanListener) close() { l.once.Do(func() { close(l.done) }) }

// Addr implements net.Listener.
func (l *chanListener) Addr() net.Addr { return l.addr }
