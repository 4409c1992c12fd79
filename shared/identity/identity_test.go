package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCAHashAndPin(t *testing.T) {
	ca, other := selfSigned(t, "ca"), selfSigned(t, "other")
	pin, err := CAHash(ca)
	if err != nil {
		t.Fatal(err)
	}
	// The kubeadm format: sha256 of the DER SubjectPublicKeyInfo.
	cert, _ := FirstCert(ca)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if want := "sha256:" + hex.EncodeToString(sum[:]); pin != want {
		t.Fatalf("CAHash = %s, want %s", pin, want)
	}

	tests := []struct {
		name    string
		pem     []byte
		pin     string
		wantErr bool
	}{
		{name: "match", pem: ca, pin: pin},
		{name: "upper-case hex", pem: ca, pin: "sha256:" + strings.ToUpper(strings.TrimPrefix(pin, "sha256:"))},
		{name: "second certificate of a bundle", pem: append(append([]byte{}, other...), ca...), pin: pin},
		{name: "another CA", pem: other, pin: pin, wantErr: true},
		{name: "no prefix", pem: ca, pin: strings.TrimPrefix(pin, "sha256:"), wantErr: true},
		{name: "empty", pem: nil, pin: pin, wantErr: true},
		{name: "truncated pin", pem: ca, pin: pin[:20], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyPin(tt.pem, tt.pin)
			if (err != nil) != tt.wantErr {
				t.Fatalf("VerifyPin = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && strings.HasPrefix(tt.pin, "sha256:") && !errors.Is(err, ErrPinMismatch) {
				t.Errorf("error %v does not wrap ErrPinMismatch", err)
			}
		})
	}
}
