// Package pki is the hub's certificate authority. It issues the hub's serving
// certificate and the short-lived client certificates that identify agents
// (CommonName = cluster name), from certificate requests whose keys never
// leave the clusters.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/flotilla-cd/flotilla/shared/identity"
)

// CAValidity is how long a new CA is valid.
const CAValidity = 10 * 365 * 24 * time.Hour

// ErrBadCSR is returned for a certificate request that cannot be signed.
var ErrBadCSR = errors.New("invalid certificate request")

// CA signs certificates. It is safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// NewCA creates a self-signed ECDSA P-256 CA valid from now, with a new
// key.
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	return newCAWithKey(key, now)
}

// newCAWithKey makes a self-signed CA certificate for key, valid from now.
func newCAWithKey(key crypto.Signer, now time.Time) (*CA, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "flotilla-hub-ca", Organization: []string{"flotilla"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	return ParseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// ParseCA loads a CA from a PEM certificate and its PEM key (PKCS#8, or
// SEC 1 for EC keys). The key must be the certificate's.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := identity.FirstCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	signer, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("CA key does not belong to the CA certificate")
	}
	return &CA{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// KeyPEM returns the CA private key in PEM.
func (ca *CA) KeyPEM() []byte { return ca.keyPEM }

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Hash returns the CA pin, see identity.CAHash.
func (ca *CA) Hash() string {
	h, _ := identity.CAHash(ca.certPEM)
	return h
}

// Issued is a client certificate SignClient made.
type Issued struct {
	CertPEM []byte
	// Serial is the certificate's serial number in lower-case hex, as
	// x509.Certificate.SerialNumber.Text(16) prints it.
	Serial    string
	NotBefore time.Time
	NotAfter  time.Time
}

// SignClient signs csrPEM as the client certificate of cluster, valid for
// ttl from now (NotBefore is backdated for clock skew, see backdate). The
// request's own subject is ignored: the identity is always the cluster the
// caller authorized. Errors about the request wrap ErrBadCSR.
func (ca *CA) SignClient(csrPEM []byte, cluster string, ttl time.Duration, now time.Time) (Issued, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return Issued{}, fmt.Errorf("%w: no PEM CERTIFICATE REQUEST", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return Issued{}, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return Issued{}, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	serial := randSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cluster, Organization: []string{identity.ClusterOrganization}},
		NotBefore:    now.Add(-backdate(ttl)).Truncate(time.Second),
		NotAfter:     now.Add(ttl).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return Issued{}, fmt.Errorf("sign client certificate for %s: %w", cluster, err)
	}
	return Issued{
		CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Serial:    serial.Text(16),
		NotBefore: tmpl.NotBefore.UTC(),
		NotAfter:  tmpl.NotAfter.UTC(),
	}, nil
}

// ServingCert issues a serving certificate for hosts (DNS names or IPs),
// valid for a year from now.
func (ca *CA) ServingCert(hosts []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: "flotilla-hub"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sign serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}, nil
}

// Lifetime is the validity span (NotAfter - NotBefore) of a certificate
// SignClient issues for ttl.
func Lifetime(ttl time.Duration) time.Duration { return ttl + backdate(ttl) }

// backdate is how far before now a client certificate's validity starts,
// for clocks that run behind: five minutes, but at most a tenth of ttl.
// Agents renew at a fraction of NotAfter-NotBefore; a backdate as long as
// a short ttl would put that moment in the past and renew at once, again
// and again.
func backdate(ttl time.Duration) time.Duration {
	return min(5*time.Minute, ttl/10)
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return n
}
