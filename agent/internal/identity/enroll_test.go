package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	sharedid "github.com/flotilla-cd/flotilla/shared/identity"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// parseCSR parses a PEM certificate request made by NewKey.
func parseCSR(t *testing.T, csrPEM []byte) *x509.CertificateRequest {
	t.Helper()
	blk, _ := pem.Decode(csrPEM)
	if blk == nil {
		t.Fatal("certificate request: no PEM block")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func (ca *testCA) pin(t *testing.T) string {
	t.Helper()
	h, err := sharedid.CAHash(ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (ca *testCA) sign(t *testing.T, tmpl *x509.Certificate, pub any) []byte {
	t.Helper()
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// enrollServer answers Enroll like a hub would, signing with ca, and
// records the tokens it was sent. It serves a certificate for host.
type enrollServer struct {
	apiv1alpha1.UnimplementedAgentServiceServer
	t        *testing.T
	ca       *testCA
	returnCA []byte
	mu       sync.Mutex
	tokens   []string
}

func (s *enrollServer) Enroll(_ context.Context, req *apiv1alpha1.EnrollRequest) (*apiv1alpha1.EnrollResponse, error) {
	s.mu.Lock()
	s.tokens = append(s.tokens, req.GetToken())
	s.mu.Unlock()
	blk, _ := pem.Decode(req.GetCsrPem())
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	der := s.ca.sign(s.t, &x509.Certificate{Subject: pkix.Name{CommonName: req.GetCluster()}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, csr.PublicKey)
	return &apiv1alpha1.EnrollResponse{CertificatePem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), CaPem: s.returnCA}, nil
}

func (s *enrollServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// serve starts a TLS gRPC server on 127.0.0.1 with a serving certificate
// for host signed by ca, sending the chain [leaf, ca].
func serve(t *testing.T, ca *testCA, host string, returnCA []byte) (string, *enrollServer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "hub"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	leaf := ca.sign(t, tmpl, key.Public())
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{leaf, ca.cert.Raw}, PrivateKey: key}}}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	srv := &enrollServer{t: t, ca: ca, returnCA: returnCA}
	apiv1alpha1.RegisterAgentServiceServer(gs, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), srv
}

func TestEnrollPinsTheHubCA(t *testing.T) {
	hubCA := newTestCA(t, "hub-ca")
	otherCA := newTestCA(t, "mitm-ca")
	ctx := t.Context()

	t.Run("the pinned CA", func(t *testing.T) {
		addr, srv := serve(t, hubCA, "127.0.0.1", hubCA.pem)
		id, err := Enroll(ctx, EnrollOptions{HubAddr: addr, Cluster: "c1", Token: "tok", CAHash: hubCA.pin(t)})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"tok"}, srv.received()); d != "" {
			t.Errorf("tokens the hub got (-want +got):\n%s", d)
		}
		if _, err := id.TLSCertificate(); err != nil {
			t.Errorf("key and certificate do not match: %v", err)
		}
		if string(id.CAPEM) != string(hubCA.pem) || id.Cluster != "c1" {
			t.Errorf("identity %s with CA %q", id.Cluster, id.CAPEM)
		}
	})
	t.Run("the pinned CA given as a file", func(t *testing.T) {
		addr, _ := serve(t, hubCA, "127.0.0.1", hubCA.pem)
		if _, err := Enroll(ctx, EnrollOptions{HubAddr: addr, Cluster: "c1", Token: "tok", CAPEM: hubCA.pem}); err != nil {
			t.Fatal(err)
		}
	})

	refusals := []struct {
		name     string
		serveCA  *testCA
		host     string
		returnCA []byte
		opts     EnrollOptions
		sent     bool // whether the token reaches the server
	}{
		{name: "a man in the middle with his own CA", serveCA: otherCA, host: "127.0.0.1", returnCA: otherCA.pem, opts: EnrollOptions{CAHash: hubCA.pin(t)}},
		{name: "the pinned CA, but a certificate for another host", serveCA: hubCA, host: "evil.example", returnCA: hubCA.pem, opts: EnrollOptions{CAHash: hubCA.pin(t)}},
		{name: "a CA file that is not the hub's", serveCA: otherCA, host: "127.0.0.1", returnCA: otherCA.pem, opts: EnrollOptions{CAPEM: hubCA.pem}},
		{name: "a malformed pin", serveCA: hubCA, host: "127.0.0.1", returnCA: hubCA.pem, opts: EnrollOptions{CAHash: "md5:abc"}},
		{name: "the hub returns another CA than it serves", serveCA: hubCA, host: "127.0.0.1", returnCA: otherCA.pem, opts: EnrollOptions{CAHash: hubCA.pin(t)}, sent: true},
		{name: "no pin at all", serveCA: hubCA, host: "127.0.0.1", returnCA: hubCA.pem},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			addr, srv := serve(t, tt.serveCA, tt.host, tt.returnCA)
			o := tt.opts
			o.HubAddr, o.Cluster, o.Token = addr, "c1", "secret-token"
			if _, err := Enroll(ctx, o); err == nil {
				t.Fatal("enrolled")
			}
			if got := len(srv.received()) > 0; got != tt.sent {
				t.Errorf("token sent to the server: %v, want %v", got, tt.sent)
			}
		})
	}
}

func TestDirStore(t *testing.T) {
	ctx := t.Context()
	s := DirStore{Dir: filepath.Join(t.TempDir(), "id")}
	if _, err := s.Load(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("load from an empty folder: %v, want ErrNotFound", err)
	}
	ca := newTestCA(t, "ca")
	keyPEM, csrPEM, err := NewKey("c1")
	if err != nil {
		t.Fatal(err)
	}
	csr := parseCSR(t, csrPEM)
	cert := func() []byte {
		der := ca.sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "c1"}}, csr.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	for _, id := range []*Identity{
		{Cluster: "c1", KeyPEM: keyPEM, CertPEM: cert(), CAPEM: ca.pem},
		{Cluster: "c1", KeyPEM: keyPEM, CertPEM: cert(), CAPEM: ca.pem}, // renewed
	} {
		if err := s.Save(ctx, id); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(id, got); d != "" {
			t.Errorf("loaded (-saved +loaded):\n%s", d)
		}
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
}
