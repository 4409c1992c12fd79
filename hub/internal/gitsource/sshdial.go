package gitsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/net/proxy"
)

// go-git's ssh transport does not pass an operation's context to its
// connection: the ssh handshake and the reads of a server that accepts and
// never answers would wait for ever. It does dial through a proxy dialer
// chosen by URL scheme, so the hub registers one of its own (under a scheme
// no real proxy uses): it dials directly and gives the connection the
// operation's deadline and a cap on the bytes it reads.
const sshDialScheme = "flotilla-deadline"

func init() {
	proxy.RegisterDialerType(sshDialScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		q := u.Query()
		at, err := strconv.ParseInt(q.Get("deadline"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ssh dialer deadline: %w", err)
		}
		maxBytes, _ := strconv.ParseInt(q.Get("max"), 10, 64)
		return &deadlineDialer{deadline: time.Unix(0, at), max: maxBytes}, nil
	})
}

// sshProxy returns the proxy options that make an ssh operation on repoURL
// end by ctx's deadline and read at most maxBytes (0: no cap); none for
// other schemes or without a deadline.
func sshProxy(ctx context.Context, repoURL string, maxBytes int64) transport.ProxyOptions {
	loc, err := parseLocation(repoURL)
	dl, ok := ctx.Deadline()
	if err != nil || loc.scheme != "ssh" || !ok {
		return transport.ProxyOptions{}
	}
	return transport.ProxyOptions{URL: fmt.Sprintf("%s://conn?deadline=%d&max=%d", sshDialScheme, dl.UnixNano(), maxBytes)}
}

type deadlineDialer struct {
	deadline time.Time
	max      int64
}

func (d *deadlineDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext implements proxy.ContextDialer.
func (d *deadlineDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, d.deadline)
	defer cancel()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(d.deadline); err != nil {
		c.Close()
		return nil, err
	}
	return &cappedConn{Conn: c, max: d.max}, nil
}

// cappedConn fails reads once more than max bytes arrived. The cap is on
// the connection (a pack plus framing); the pack itself is checked by
// cappedStorage.
type cappedConn struct {
	net.Conn
	n, max int64
}

func (c *cappedConn) Read(p []byte) (int, error) {
	if c.max > 0 && c.n > c.max {
		return 0, fmt.Errorf("more than %s received: %w", mib(c.max), ErrTooLarge)
	}
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	return n, err
}

// timedOut reports whether err is a connection deadline passing.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
