package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	sharedid "github.com/flotilla-cd/flotilla/shared/identity"
)

// EnrollOptions are the inputs of a first contact.
type EnrollOptions struct {
	// HubAddr is host:port of the hub's agent endpoint.
	HubAddr string
	// ServerName overrides the name checked in the hub's certificate;
	// default the host of HubAddr.
	ServerName string
	Cluster    string
	Token      string
	// CAHash pins the hub CA ("sha256:<hex>"), as printed by
	// `flotilla cluster add`. Either CAHash or CAPEM is required.
	CAHash string
	// CAPEM trusts this CA directly instead of pinning.
	CAPEM        []byte
	AgentVersion string
}

// Enroll makes a key pair, sends a certificate request with the join token
// and returns the new identity. With a CAHash the hub's certificate chain
// must contain a CA with that hash and the serving certificate must verify
// against it, so a man in the middle cannot take the first contact.
func Enroll(ctx context.Context, o EnrollOptions) (*Identity, error) {
	if o.CAHash == "" && len(o.CAPEM) == 0 {
		return nil, errors.New("enrol: a CA hash (--ca-hash) or CA file (--ca-file) is required")
	}
	host, _, err := net.SplitHostPort(o.HubAddr)
	if err != nil {
		return nil, fmt.Errorf("enrol: hub address %q: %w", o.HubAddr, err)
	}
	if o.ServerName == "" {
		o.ServerName = host
	}
	var pinned []byte
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: o.ServerName}
	if len(o.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CAPEM) {
			return nil, errors.New("enrol: CA file holds no certificate")
		}
		cfg.RootCAs = pool
		pinned = o.CAPEM
	} else {
		// Verify by pin: trust the chain's CA only if its key hashes to CAHash.
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			ca, err := verifyPinned(raw, o.CAHash, o.ServerName)
			if err != nil {
				return err
			}
			pinned = ca
			return nil
		}
	}
	conn, err := grpc.NewClient(o.HubAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, fmt.Errorf("enrol: dial %s: %w", o.HubAddr, err)
	}
	defer conn.Close()
	keyPEM, csrPEM, err := NewKey(o.Cluster)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := apiv1alpha1.NewAgentServiceClient(conn).Enroll(ctx, &apiv1alpha1.EnrollRequest{
		Cluster: o.Cluster, Token: o.Token, CsrPem: csrPEM, AgentVersion: o.AgentVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("enrol cluster %s at %s: %w", o.Cluster, o.HubAddr, err)
	}
	caPEM := resp.GetCaPem()
	// The CA the hub returns must be the one we verified the connection with.
	if o.CAHash != "" {
		if err := sharedid.VerifyPin(caPEM, o.CAHash); err != nil {
			return nil, fmt.Errorf("enrol: CA returned by the hub: %w", err)
		}
	} else if len(pinned) > 0 && len(caPEM) == 0 {
		caPEM = pinned
	}
	return &Identity{Cluster: o.Cluster, KeyPEM: keyPEM, CertPEM: resp.GetCertificatePem(), CAPEM: caPEM}, nil
}

func verifyPinned(raw [][]byte, pin, serverName string) ([]byte, error) {
	if len(raw) == 0 {
		return nil, errors.New("hub sent no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, fmt.Errorf("hub certificate: %w", err)
		}
		certs = append(certs, c)
	}
	for _, c := range certs[1:] {
		caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if sharedid.VerifyPin(caPEM, pin) != nil {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: serverName}); err != nil {
			return nil, fmt.Errorf("hub certificate does not verify against the pinned CA: %w", err)
		}
		return caPEM, nil
	}
	return nil, fmt.Errorf("hub: %w (%s)", sharedid.ErrPinMismatch, pin)
}
