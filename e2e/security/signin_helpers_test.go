package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// selfSignedCert writes a certificate (its own root) and key for the
// loopback IP into dir and returns their paths.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flotilla-hub test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "hub.crt"), filepath.Join(dir, "hub.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// hopRecorder keeps every response that passes through a real transport, so
// that a test can read headers of the hops of a redirect chain.
type hopRecorder struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	seen []*http.Response
}

func (r *hopRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.seen = append(r.seen, resp)
		r.mu.Unlock()
	}
	return resp, err
}

// setCookies returns the cookies set by responses from host.
func (r *hopRecorder) setCookies(host string) []*http.Cookie {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*http.Cookie
	for _, resp := range r.seen {
		if resp.Request.URL.Host == host {
			out = append(out, resp.Cookies()...)
		}
	}
	return out
}

var authRequestIDRE = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// signInAtProvider does what a person does in a browser: client (with a
// cookie jar) opens start, which leads through redirects to the provider's
// sign-in form; it posts user and pass there and follows the redirects
// back (to the hub, or to the CLI's loopback listener). It returns the
// last response's status and body.
func signInAtProvider(t *testing.T, client *http.Client, start, user, pass string) (int, string) {
	t.Helper()
	resp, err := client.Get(start)
	if err != nil {
		t.Fatalf("open %s: %v", start, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := authRequestIDRE.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("open %s: ended at %s with %d, no sign-in form: %s", start, resp.Request.URL, resp.StatusCode, body)
	}
	form := resp.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	resp, err = client.PostForm(form.String(), url.Values{"authRequestID": {string(m[1])}, "username": {user}, "password": {pass}})
	if err != nil {
		t.Fatalf("sign in at %s: %v", form, err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
