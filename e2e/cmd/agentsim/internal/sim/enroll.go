package sim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/api"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	sharedid "github.com/flotilla-cd/flotilla/shared/identity"
)

// register creates cluster name with labels through the hub's HTTP API, as
// `flotilla cluster add` does, and returns its join data.
func register(ctx context.Context, hc *http.Client, apiURL, adminToken, name string, labels map[string]string) (api.JoinResponse, error) {
	body, err := json.Marshal(api.AddClusterRequest{Name: name, Labels: labels})
	if err != nil {
		return api.JoinResponse{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/api/v1/clusters", bytes.NewReader(body))
	if err != nil {
		return api.JoinResponse{}, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return api.JoinResponse{}, fmt.Errorf("register cluster %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return api.JoinResponse{}, fmt.Errorf("register cluster %s: HTTP %d: %s", name, resp.StatusCode, bytes.TrimSpace(b))
	}
	var j api.JoinResponse
	if err := json.Unmarshal(b, &j); err != nil {
		return api.JoinResponse{}, fmt.Errorf("register cluster %s: answer: %w", name, err)
	}
	return j, nil
}

// identity is a simulated agent's key, certificate and the pinned hub CA.
type identity struct {
	cert tls.Certificate
	ca   *x509.CertPool
}

// enroll makes a P-256 key, sends a CSR with the join token over TLS
// pinned to the join's CA hash to dial (the join's hub address, or a
// balancer in front of the same hubs), and returns the signed identity, as
// the real agent's enrolment does.
func enroll(ctx context.Context, j api.JoinResponse, dial string) (*identity, error) {
	host, _, err := net.SplitHostPort(j.HubAddr)
	if err != nil {
		return nil, fmt.Errorf("hub address %q: %w", j.HubAddr, err)
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         host,
		InsecureSkipVerify: true, // verified below against the pinned CA
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, j.CAHash, host)
		},
	}
	conn, err := grpc.NewClient(dial, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, fmt.Errorf("enrol %s: dial: %w", j.Cluster, err)
	}
	defer conn.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: j.Cluster, Organization: []string{sharedid.ClusterOrganization}},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("enrol %s: CSR: %w", j.Cluster, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := apiv1alpha1.NewAgentServiceClient(conn).Enroll(ctx, &apiv1alpha1.EnrollRequest{
		Cluster: j.Cluster, Token: j.Token, AgentVersion: "agentsim",
		CsrPem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
	})
	if err != nil {
		return nil, fmt.Errorf("enrol %s: %w", j.Cluster, err)
	}
	if err := sharedid.VerifyPin(resp.GetCaPem(), j.CAHash); err != nil {
		return nil, fmt.Errorf("enrol %s: CA returned by the hub: %w", j.Cluster, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(resp.GetCaPem()) {
		return nil, fmt.Errorf("enrol %s: hub returned no CA certificate", j.Cluster)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(resp.GetCertificatePem(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
	if err != nil {
		return nil, fmt.Errorf("enrol %s: certificate: %w", j.Cluster, err)
	}
	return &identity{cert: cert, ca: pool}, nil
}

// transient reports whether a failed enrolment is worth trying again: the
// hub was out of reach, overloaded or cut the connection (codes
// Unavailable, DeadlineExceeded, ResourceExhausted), as the real agent
// retries anything but a refusal.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

func verifyPinned(raw [][]byte, pin, serverName string) error {
	if len(raw) < 2 {
		return errors.New("hub sent no CA certificate in its chain")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("hub certificate: %w", err)
	}
	for _, r := range raw[1:] {
		ca, err := x509.ParseCertificate(r)
		if err != nil {
			continue
		}
		if sharedid.VerifyPin(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), pin) != nil {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: serverName}); err != nil {
			return fmt.Errorf("hub certificate does not verify against the pinned CA: %w", err)
		}
		return nil
	}
	return sharedid.ErrPinMismatch
}
