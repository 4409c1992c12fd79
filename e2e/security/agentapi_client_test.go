//go:build !unit

package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// A hand-written agent: the protocol spoken with grpc-go and crypto/tls
// directly, the way an attacker who read the .proto file would.

// attackerTLS trusts any hub (an attacker does not care) and offers cert
// when it is not nil.
func attackerTLS(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{"h2"}}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// newCSR makes a P-256 key and a PEM certificate request for cn.
func newCSR(t *testing.T, cn string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// dialAgentPort opens a gRPC client to the hub's agent port with cfg.
func dialAgentPort(t *testing.T, h *harness.Hub, cfg *tls.Config, opts ...grpc.DialOption) apiv1alpha1.AgentServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(h.AgentAddr, append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return apiv1alpha1.NewAgentServiceClient(conn)
}

// enrolled is an identity the hub issued to the hand-written agent.
type enrolled struct {
	cluster string
	cert    tls.Certificate
	leaf    *x509.Certificate
}

// enrol registers cluster through the hub's API and enrols for real with
// its join token, as `flotilla-agent` does.
func enrol(t *testing.T, h *harness.Hub, cluster string) enrolled {
	t.Helper()
	j, err := h.AddCluster(t.Context(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	key, csrPEM := newCSR(t, cluster)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := dialAgentPort(t, h, attackerTLS(nil)).Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: cluster, Token: j.Token, CsrPem: csrPEM})
	if err != nil {
		t.Fatalf("enrol %s: %v", cluster, err)
	}
	return identityOf(t, cluster, resp.GetCertificatePem(), key)
}

func identityOf(t *testing.T, cluster string, certPEM []byte, key *ecdsa.PrivateKey) enrolled {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatalf("certificate of %s: no PEM", cluster)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return enrolled{cluster: cluster, cert: tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: key, Leaf: leaf}, leaf: leaf}
}

// agentStream is a Connect stream after the hub's Welcome.
type agentStream struct {
	apiv1alpha1.AgentService_ConnectClient
	cancel context.CancelFunc
}

// connect opens a Connect stream with cert, says Hello and waits for the
// Welcome.
func connect(t *testing.T, h *harness.Hub, cert tls.Certificate) (*agentStream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	c := dialAgentPort(t, h, attackerTLS(&cert), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	s, err := c.Connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	// A refused stream may be ended before the Hello is sent (Send then
	// says io.EOF); Recv returns the status either way.
	_ = s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Hello{Hello: &apiv1alpha1.Hello{ProtocolVersion: version.ProtocolVersion, AgentVersion: "hand-written"}}})
	m, err := s.Recv()
	if err != nil {
		cancel()
		return nil, err
	}
	if m.GetWelcome() == nil {
		cancel()
		return nil, fmt.Errorf("first message %v, want a Welcome", m)
	}
	as := &agentStream{AgentService_ConnectClient: s, cancel: cancel}
	t.Cleanup(cancel)
	return as, nil
}

// renewed sends a renewal request and reads the hub's messages until its
// answer. The hub reads a stream's messages in order, so the answer also
// means every message sent before was handled.
func (s *agentStream) renewed(t *testing.T, cluster string) (*apiv1alpha1.RenewResponse, *ecdsa.PrivateKey) {
	t.Helper()
	key, csrPEM := newCSR(t, cluster)
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Renew{Renew: &apiv1alpha1.RenewRequest{CsrPem: csrPEM}}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for the renewal answer: %v", err)
		}
		if r := m.GetRenew(); r != nil {
			return r, key
		}
	}
}

// apiUp checks that the hub's HTTP API answers.
func apiUp(h *harness.Hub) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(h.HTTPURL + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: HTTP %d", resp.StatusCode)
	}
	return nil
}
