package agentapi

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// handshakenCreds are the transport credentials of connections whose TLS
// handshake the port did (see port.go): they report that connection's TLS
// state to gRPC, as credentials.NewTLS would after its own handshake, so
// peer.FromContext yields credentials.TLSInfo with the verified chains.
type handshakenCreds struct{}

var _ credentials.TransportCredentials = handshakenCreds{}

var errNotTLS = errors.New("agent port: connection did not come through the TLS handshake")

// ServerHandshake implements credentials.TransportCredentials.
func (handshakenCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil, nil, errNotTLS
	}
	return c, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

// ClientHandshake implements credentials.TransportCredentials; the hub
// dials nothing with these.
func (handshakenCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errNotTLS
}

// Info implements credentials.TransportCredentials.
func (handshakenCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

// Clone implements credentials.TransportCredentials.
func (handshakenCreds) Clone() credentials.TransportCredentials { return handshakenCreds{} }

// OverrideServerName implements credentials.TransportCredentials.
func (handshakenCreds) OverrideServerName(string) error { return nil }
