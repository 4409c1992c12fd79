package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/shared/identity"
)

func csr(t *testing.T, subject pkix.Name) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestSignClient(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ttl          time.Duration
		wantBackdate time.Duration
	}{
		{ttl: 24 * time.Hour, wantBackdate: 5 * time.Minute},
		{ttl: 2 * time.Minute, wantBackdate: 12 * time.Second},
	}
	for _, tt := range tests {
		// The request asks for another cluster and group; the CA decides.
		is, err := ca.SignClient(csr(t, pkix.Name{CommonName: "other", Organization: []string{"system:masters"}}), "east", tt.ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := identity.FirstCert(is.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != "east" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != identity.ClusterOrganization {
			t.Errorf("subject %s, want CN=east, O=%s", cert.Subject, identity.ClusterOrganization)
		}
		if cert.SerialNumber.Text(16) != is.Serial || !cert.NotBefore.Equal(is.NotBefore) || !cert.NotAfter.Equal(is.NotAfter) {
			t.Errorf("Issued %+v does not describe the certificate (serial %x, %s–%s)", is, cert.SerialNumber, cert.NotBefore, cert.NotAfter)
		}
		if d := now.Sub(cert.NotBefore); d < tt.wantBackdate || d > tt.wantBackdate+time.Second {
			t.Errorf("ttl %s: backdated by %s, want %s", tt.ttl, d, tt.wantBackdate)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("client certificate does not verify for client auth: %v", err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Error("client certificate verifies as a server certificate")
		}
	}

	good := csr(t, pkix.Name{})
	blk, _ := pem.Decode(good)
	blk.Bytes[len(blk.Bytes)-3] ^= 0xff // break the signature
	for name, req := range map[string][]byte{
		"not PEM":         []byte("hello"),
		"a certificate":   ca.CertPEM(),
		"a bad signature": pem.EncodeToMemory(blk),
	} {
		if _, err := ca.SignClient(req, "east", time.Hour, now); !errors.Is(err, ErrBadCSR) {
			t.Errorf("%s: %v, want ErrBadCSR", name, err)
		}
	}
}

func TestServingCertAndHash(t *testing.T) {
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ca.ServingCert([]string{"127.0.0.1", "hub.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(sc.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "hub.example"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host}); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}
	if err := identity.VerifyPin(ca.CertPEM(), ca.Hash()); err != nil {
		t.Errorf("CA does not match its own hash: %v", err)
	}
}

// TestLoadOrCreate: the first start creates and stores the CA; every later
// start, and a start from a backup, loads the same one.
func TestLoadOrCreate(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hub.db")
	st, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := LoadOrCreate(ctx, st, filepath.Join(filepath.Dir(path), "ca.key"), false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	again, err := LoadOrCreate(ctx, st, filepath.Join(filepath.Dir(path), "ca.key"), false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if again.Hash() != first.Hash() || string(again.KeyPEM()) != string(first.KeyPEM()) {
		t.Fatalf("CA changed across a restart: %s, then %s", first.Hash(), again.Hash())
	}
}

// TestLoadOrCreateKeyFile: an operator's own key file (a mounted Secret)
// is used for a new CA; a key file that is not the stored certificate's,
// or a certificate without any key, is an error.
func TestLoadOrCreateKeyFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	own, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "operator.key")
	if err := os.WriteFile(keyFile, own.KeyPEM(), 0o400); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ca, err := LoadOrCreate(ctx, st, keyFile, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !ca.cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(own.key.Public()) {
		t.Error("the new CA certificate is not for the operator's key")
	}

	other, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong.key")
	if err := os.WriteFile(wrong, other.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(ctx, st, wrong, false, time.Now()); err == nil {
		t.Error("a key file of another CA was accepted")
	}
	if _, err := LoadOrCreate(ctx, st, filepath.Join(dir, "missing.key"), false, time.Now()); err == nil {
		t.Error("a stored certificate without a key was accepted")
	}
}

// TestLoadOrCreateRotate: with rotate, a missing or foreign key file makes
// a new CA; with the stored CA's own key it changes nothing.
func TestLoadOrCreateRotate(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "hub.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keyFile := filepath.Join(dir, "ca.key")
	first, err := LoadOrCreate(ctx, st, keyFile, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	same, err := LoadOrCreate(ctx, st, keyFile, true, time.Now())
	if err != nil || same.Hash() != first.Hash() {
		t.Fatalf("rotate with the CA's own key: %v, %v; want the same CA", same.Hash(), err)
	}
	if err := os.Rename(keyFile, keyFile+".old"); err != nil {
		t.Fatal(err)
	}
	rotated, err := LoadOrCreate(ctx, st, keyFile, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Hash() == first.Hash() {
		t.Fatal("rotate without the key file kept the old CA")
	}
	again, err := LoadOrCreate(ctx, st, keyFile, false, time.Now())
	if err != nil || again.Hash() != rotated.Hash() {
		t.Fatalf("start after the rotation: %v, %v; want the new CA", again.Hash(), err)
	}
}
