//go:build !unit

package security

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	"github.com/flotilla-cd/flotilla/shared/identity"
)

// TestStolenCAKeyCannotSupersedeAnAgent replays the second half of
// finding 1: with the CA key (read out of hub.db by a chart), a certificate
// for any cluster was accepted, because the hub adopted any certificate
// newer than the stored one, of any lifetime, superseding the real agent.
// The key must live in a file of its own, readable by the hub only, and
// never in hub.db; a certificate the hub did not issue last is refused
// outside restore mode, and in restore mode one valid for longer than the
// hub issues is refused still.
func TestStolenCAKeyCannotSupersedeAnAgent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := harness.StartHub(t.Context(), binDir, dir, harness.HubOptions{AppsDir: apps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	agent := enrol(t, h, "a")

	// Where the key is, and is not.
	keyFile := filepath.Join(h.StateDir, "ca.key")
	if fi, err := os.Stat(keyFile); err != nil {
		t.Errorf("CA key file: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key file mode %v, want 0600", fi.Mode().Perm())
	}
	h.Stop()
	caPEM, storedKey := readCA(t, filepath.Join(h.StateDir, "hub.db"))
	raw, err := os.ReadFile(filepath.Join(h.StateDir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	if storedKey != nil || bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Error("hub.db holds the CA private key")
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		keyPEM = storedKey // the attacker takes it where it is
	}
	if err := h.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The attacker signs certificates for cluster a with the stolen key.
	now := time.Now()
	longLived := forge(t, caPEM, keyPEM, "a", now, now.Add(10*365*24*time.Hour))
	likeTheHub := forge(t, caPEM, keyPEM, "a", now, now.Add(24*time.Hour))
	for name, cert := range map[string]tls.Certificate{"valid for ten years": longLived, "valid for the hub's 24h": likeTheHub} {
		if s, err := connect(t, h, cert); status.Code(err) != codes.PermissionDenied {
			if s != nil {
				s.cancel()
			}
			t.Errorf("forged certificate %s: %v; want PermissionDenied", name, err)
		}
	}
	s, err := connect(t, h, agent.cert)
	if err != nil {
		t.Fatalf("the real agent after the forgeries: %v", err)
	}
	s.cancel()

	// After restoring an old backup the operator starts the hub in restore
	// mode: a newer certificate of the hub's lifetime is adopted, a longer
	// one still refused.
	h.Stop()
	restored, err := harness.StartHub(t.Context(), binDir, dir, harness.HubOptions{AppsDir: apps, Extra: []string{"--restore-mode"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(restored.Stop)
	h = restored
	if s, err := connect(t, h, longLived); status.Code(err) != codes.PermissionDenied {
		if s != nil {
			s.cancel()
		}
		t.Errorf("forged ten-year certificate in restore mode: %v; want PermissionDenied", err)
	}
	s, err = connect(t, h, likeTheHub)
	if err != nil {
		t.Errorf("a newer certificate of the hub's lifetime in restore mode: %v; want adopted", err)
	} else {
		s.cancel()
	}
}

// readCA reads the CA certificate and any stored key from a stopped hub's
// hub.db.
func readCA(t *testing.T, path string) (certPEM, keyPEM []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("ca"))
		certPEM = bytes.Clone(b.Get([]byte("cert")))
		if k := b.Get([]byte("key")); k != nil {
			keyPEM = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// forge signs a client certificate for cluster with the CA key.
func forge(t *testing.T, caPEM, keyPEM []byte, cluster string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	ca, err := identity.FirstCert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		t.Fatal("CA key: no PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cluster, Organization: []string{identity.ClusterOrganization}},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), k.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
