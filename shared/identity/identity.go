// Package identity holds the parts of cluster identity that the hub and the
// agent must compute alike: the CA pin carried by the join command and the
// name encoded in a client certificate.
package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrPinMismatch is returned when a CA does not match the pinned hash.
var ErrPinMismatch = errors.New("CA certificate does not match the pinned hash")

// CAHash returns "sha256:<hex>" of the DER SubjectPublicKeyInfo of the first
// certificate in caPEM, the same pin format as kubeadm's
// --discovery-token-ca-cert-hash.
func CAHash(caPEM []byte) (string, error) {
	cert, err := FirstCert(caPEM)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// VerifyPin checks that one certificate of caPEM hashes to pin.
func VerifyPin(caPEM []byte, pin string) error {
	want, ok := strings.CutPrefix(pin, "sha256:")
	if !ok {
		return fmt.Errorf("CA hash %q: want the form sha256:<hex>", pin)
	}
	for rest := caPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return ErrPinMismatch
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(strings.ToLower(want))) == 1 {
			return nil
		}
	}
}

// FirstCert parses the first PEM certificate in data.
func FirstCert(data []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// ClusterOrganization is the Organization of every agent client certificate;
// the cluster name is the CommonName.
const ClusterOrganization = "flotilla:clusters"
