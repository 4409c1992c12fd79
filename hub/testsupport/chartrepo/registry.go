package chartrepo

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/ports"

	"golang.org/x/crypto/bcrypt"
	"helm.sh/helm/v3/pkg/registry"
)

// RegistryVersion is the distribution release the tests build (pinned by
// e2e/registry/go.mod).
const RegistryVersion = "v3.1.2"

var buildOnce sync.Once

// RegistryBinary builds the registry from e2e/registry (the module proxy)
// into the bin dir (FLOTILLA_E2E_BIN_DIR, else the user cache dir) unless it
// is there, and returns its path.
func RegistryBinary(t testing.TB) string {
	t.Helper()
	bin, err := buildRegistry(os.Getenv("FLOTILLA_E2E_BIN_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildRegistry builds the registry into dir (the user cache dir when
// empty) unless it is there, and returns its path.
func buildRegistry(dir string) (string, error) {
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(c, "flotilla")
	}
	bin := filepath.Join(dir, "registry-"+RegistryVersion)
	var err error
	buildOnce.Do(func() {
		if _, serr := os.Stat(bin); serr == nil {
			return
		}
		_, self, _, _ := runtime.Caller(0)
		mod := filepath.Join(filepath.Dir(self), "..", "..", "..", "e2e", "registry")
		tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
		cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, "github.com/distribution/distribution/v3/cmd/registry")
		cmd.Dir = mod
		out, berr := cmd.CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("build registry in %s: %w\n%s", mod, berr, out)
			return
		}
		err = os.Rename(tmp, bin)
	})
	return bin, err
}

// Registry is an OCI registry process (distribution) serving HTTPS on
// loopback with htpasswd basic auth.
type Registry struct {
	// Host is host:port; repositories are oci://Host/<path>.
	Host       string
	User, Pass string
	// CA is the PEM certificate of the server.
	CA []byte
	// CertFile and KeyFile are the server's (to restart it).
	dir string
	cmd *exec.Cmd
}

// StartRegistry starts a registry with one user; it stops at the end of
// the test.
func StartRegistry(t testing.TB, user, pass string) *Registry {
	t.Helper()
	r, stop, err := RunRegistry(os.Getenv("FLOTILLA_E2E_BIN_DIR"), t.TempDir(), user, pass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return r
}

// RunRegistry builds the registry into binDir if needed and starts it with
// its state, certificate and htpasswd under dir and one user, for suites
// that start their parts outside a test; stop ends it.
func RunRegistry(binDir, dir, user, pass string) (*Registry, func(), error) {
	bin, err := buildRegistry(binDir)
	if err != nil {
		return nil, nil, err
	}
	r := &Registry{User: user, Pass: pass, dir: dir}
	if r.CA, err = writeCert(dir); err != nil {
		return nil, nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, nil, err
	}
	if r.Host, err = ports.Addr(); err != nil {
		return nil, nil, err
	}
	stop, err := r.start(bin)
	return r, stop, err
}

// CAFile is the path of the registry's certificate (PEM), for a client's
// CA bundle.
func (r *Registry) CAFile() string { return filepath.Join(r.dir, "cert.pem") }

func (r *Registry) start(bin string) (func(), error) {
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: flotilla-test
    path: %s
`, filepath.Join(r.dir, "data"), r.Host, filepath.Join(r.dir, "cert.pem"), filepath.Join(r.dir, "key.pem"), filepath.Join(r.dir, "htpasswd"))
	cfgPath := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	r.cmd = cmd
	stop := func() {
		cancel()
		_ = cmd.Wait()
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
		return stop, nil
	case <-time.After(60 * time.Second):
		stop()
		return nil, fmt.Errorf("registry at %s did not start listening within 60s", r.Host)
	}
}

// Stop stops the registry process (the registry is down).
func (r *Registry) Stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// URL is the oci:// URL of the registry path p ("charts").
func (r *Registry) URL(p string) string { return "oci://" + r.Host + "/" + p }

// Push pushes the chart archive at path to oci://Host/<p>/<name>:<version>
// with Helm's registry client.
func (r *Registry) Push(t testing.TB, p, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name, version := nameVersion(path)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r.CA)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 60 * time.Second}
	c, err := registry.NewClient(registry.ClientOptHTTPClient(hc), registry.ClientOptBasicAuth(r.User, r.Pass),
		registry.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "creds.json")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(data, fmt.Sprintf("%s/%s/%s:%s", r.Host, p, name, version)); err != nil {
		t.Fatalf("push %s: %v", path, err)
	}
}

// nameVersion splits "<dir>/<name>-<version>.tgz" (as chartutil.Save names
// archives; the version starts at the last "-" followed by a digit).
func nameVersion(path string) (string, string) {
	base := strings.TrimSuffix(filepath.Base(path), ".tgz")
	for i := len(base) - 1; i > 0; i-- {
		if base[i-1] == '-' && base[i] >= '0' && base[i] <= '9' && !strings.Contains(base[:i-1], ".") {
			return base[:i-1], base[i:]
		}
	}
	return base, ""
}

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost
// (cert.pem, key.pem) into dir and returns it as PEM.
func writeCert(dir string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flotilla test registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, err
	}
	return certPEM, nil
}
