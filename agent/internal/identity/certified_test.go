package identity

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadTakesTheClusterFromTheCertificate: an identity copied from
// another cluster with its stored name rewritten still loads as the
// cluster its certificate names, so `--cluster` cannot borrow it.
func TestLoadTakesTheClusterFromTheCertificate(t *testing.T) {
	ctx := t.Context()
	s := DirStore{Dir: filepath.Join(t.TempDir(), "id")}
	ca := newTestCA(t, "ca")
	keyPEM, csrPEM, err := NewKey("alpha")
	if err != nil {
		t.Fatal(err)
	}
	csr := parseCSR(t, csrPEM)
	der := ca.sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "alpha"}}, csr.PublicKey)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := s.Save(ctx, &Identity{Cluster: "alpha", KeyPEM: keyPEM, CertPEM: certPEM, CAPEM: ca.pem}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "cluster"), []byte("beta"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cluster != "alpha" {
		t.Errorf("loaded cluster %q, want alpha (the certificate's CommonName)", got.Cluster)
	}

	if err := os.WriteFile(filepath.Join(s.Dir, "tls.crt"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx); err == nil {
		t.Error("load with an unreadable certificate: no error")
	}
}
