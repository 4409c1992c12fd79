package agentapi

import (
	"errors"
	"io"
	"net"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/credentials"
)

// loggedCreds logs refused TLS handshakes (a plaintext client, a client
// that does not trust the hub's CA, an unverifiable client certificate),
// which gRPC otherwise drops without a word. A connection closed before
// any byte (a TCP probe) is logged at debug only.
type loggedCreds struct {
	credentials.TransportCredentials
	log hclog.Logger
}

// ServerHandshake implements credentials.TransportCredentials.
func (c loggedCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		lvl := hclog.Warn
		if errors.Is(err, io.EOF) {
			lvl = hclog.Debug
		}
		c.log.Log(lvl, "TLS handshake refused", "peer", conn.RemoteAddr().String(), "error", err)
	}
	return out, info, err
}

// Clone implements credentials.TransportCredentials.
func (c loggedCreds) Clone() credentials.TransportCredentials {
	return loggedCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}
