//go:build !unit

package security

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestAgentPortBoundsUnauthenticatedConnections replays finding 8: the
// agent port took any number of connections that never finish their TLS
// handshake (20,000 exhausted the hub's open files and took the HTTP API
// down) and kept HTTP/2 connections without a certificate for ever. With
// the hub's default limits, connections from one address past the limit
// are refused at once, half-open ones are closed at the handshake timeout
// (10 s), idle HTTP/2 connections without a certificate at the idle
// timeout (30 s), and the HTTP API answers throughout.
func TestAgentPortBoundsUnauthenticatedConnections(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")

	// The HTTP API is watched for the whole test.
	var apiErrs atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if err := apiUp(h); err != nil {
					apiErrs.Add(1)
					lastErr.Store(err.Error())
				}
			}
		}
	}()
	defer func() {
		close(stop)
		<-watched
		if n := apiErrs.Load(); n > 0 {
			t.Errorf("HTTP API failed %d times during the attack; last: %v", n, lastErr.Load())
		}
	}()

	t.Run("half-open TLS", func(t *testing.T) {
		const n = 300 // the default per-address limit is 64
		conns := make([]net.Conn, 0, n)
		var closed atomic.Int64
		for range n {
			c, err := net.Dial("tcp", h.AgentAddr)
			if err != nil {
				t.Fatalf("dial %d: %v", len(conns), err)
			}
			conns = append(conns, c)
			go func() {
				// Nothing is sent; a read returns when the hub closes.
				_, _ = c.Read(make([]byte, 1))
				closed.Add(1)
			}()
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		eventually(t, 30*time.Second, "connections over the per-address limit refused", func() error {
			if got := closed.Load(); got < n-64 {
				return fmt.Errorf("%d of %d closed by the hub", got, n)
			}
			return nil
		})
		eventually(t, 60*time.Second, "half-open connections closed at the handshake timeout", func() error {
			if got := closed.Load(); got < n {
				return fmt.Errorf("%d of %d closed by the hub", got, n)
			}
			return nil
		})
	})

	t.Run("idle HTTP/2 without a certificate", func(t *testing.T) {
		const n = 50
		var closed atomic.Int64
		var wg sync.WaitGroup
		for range n {
			c, err := idleH2(h)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				holdH2(c)
				closed.Add(1)
			}()
		}
		eventually(t, 2*time.Minute, "idle connections without a certificate closed", func() error {
			if got := closed.Load(); got < n {
				return fmt.Errorf("%d of %d closed by the hub", got, n)
			}
			return nil
		})
		wg.Wait()
	})

	if err := apiUp(h); err != nil {
		t.Fatalf("HTTP API after the attack: %v", err)
	}
}

// idleH2 opens a TLS connection without a client certificate, speaks
// HTTP/2's preface and settings, and then nothing.
func idleH2(h *harness.Hub) (*tls.Conn, error) {
	c, err := tls.Dial("tcp", h.AgentAddr, attackerTLS(nil))
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		return nil, err
	}
	if err := http2.NewFramer(c, c).WriteSettings(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// holdH2 keeps c alive as a well-behaved HTTP/2 client does (settings and
// pings acknowledged) until the hub closes it.
func holdH2(c *tls.Conn) {
	fr := http2.NewFramer(c, c)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return // closed (EOF) or reset by the hub
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		}
	}
}
