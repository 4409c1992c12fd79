package gitsource

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// go-git reads a ref advertisement whole into memory. The hub's http(s)
// transport for go-git caps what each connection reads: the limit travels
// in the operation's context (withReadCap), which net/http hands to the
// dialer. Connections are not kept alive, so a cap is never shared by two
// operations. go-git still clones this *http.Transport to add a CA bundle,
// and the clone keeps the dialer.
func init() {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	base := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := base.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if maxBytes, ok := ctx.Value(readCapKey{}).(int64); ok && maxBytes > 0 {
			return &cappedConn{Conn: c, max: maxBytes}, nil
		}
		return c, nil
	}
	cl := githttp.NewClient(&http.Client{Transport: tr})
	client.InstallProtocol("https", cl)
	client.InstallProtocol("http", cl)
}

type readCapKey struct{}

// withReadCap makes the http(s) connections of an operation under ctx read
// at most maxBytes each (0: no cap).
func withReadCap(ctx context.Context, maxBytes int64) context.Context {
	return context.WithValue(ctx, readCapKey{}, maxBytes)
}
