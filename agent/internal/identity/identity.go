package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	sharedid "github.com/flotilla-cd/flotilla/shared/identity"
)

// ErrNotFound is returned by a Store that holds no identity yet.
var ErrNotFound = errors.New("no identity stored")

// Identity is what the agent needs to connect.
type Identity struct {
	Cluster string
	KeyPEM  []byte
	CertPEM []byte
	CAPEM   []byte
}

// NotAfter returns the expiry of the client certificate.
func (id *Identity) NotAfter() (time.Time, time.Time, error) {
	c, err := sharedid.FirstCert(id.CertPEM)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return c.NotBefore, c.NotAfter, nil
}

// certified sets Cluster to the cluster the certificate was issued for.
// The hub reads an agent's identity from its certificate's CommonName, so
// the name stored beside the certificate cannot say otherwise: a copied
// identity whose stored name was changed is still the other cluster's, and
// the agent will not run as that cluster under another name.
func (id *Identity) certified(where string) (*Identity, error) {
	c, err := sharedid.FirstCert(id.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: certificate: %w", where, err)
	}
	id.Cluster = c.Subject.CommonName
	return id, nil
}

// TLSCertificate returns the client certificate with its key.
func (id *Identity) TLSCertificate() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity of cluster %s: %w", id.Cluster, err)
	}
	return c, nil
}

// NewKey makes a P-256 key and a certificate request for cluster. The
// request's subject is informational; the hub decides the identity.
func NewKey(cluster string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cluster, Organization: []string{sharedid.ClusterOrganization}},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
