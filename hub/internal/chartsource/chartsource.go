// Package chartsource fetches Helm charts from chart repositories: HTTP(S)
// repositories with an index.yaml, and OCI registries (oci://). It resolves
// a version or semver constraint to the newest matching chart version,
// downloads the chart once, checks its digest, and keeps it on disk by
// digest, shared by every app and cluster that uses it. Every request has a
// deadline and a size limit. It uses Helm's own libraries (pkg/repo,
// pkg/getter, pkg/registry, pkg/chartutil); the hub runs it in chart
// worker processes (Serve, package chartproc).
package chartsource

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartproc"
	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartref"
)

// Defaults of Options.
const (
	DefaultTimeout  = 60 * time.Second
	DefaultMaxBytes = 64 << 20
)

// Auth returns the basic-auth credentials for a repository URL (ok false:
// anonymous).
type Auth = chartproc.Auth

// Options configure a Manager.
type Options struct {
	// Dir holds the downloaded charts (<Dir>/<sha256>.tgz) and their
	// expanded trees (<Dir>/<sha256>/).
	Dir string
	// Timeout bounds one request (index, tag list, download).
	Timeout time.Duration
	// MaxBytes bounds what one request may read (an index, a chart).
	MaxBytes int64
	// Auth gives credentials by repository URL (https://... for an HTTP
	// repository, https://<host>/<path> for oci://<host>/<path>).
	Auth Auth
	// CABundle holds PEM certificates trusted besides the system's.
	CABundle []byte
	// AllowInsecureHTTP lets http:// repositories and plain-HTTP
	// registries be used (never with credentials).
	AllowInsecureHTTP bool
}

// Ref is a resolved chart (see package chartref, which the controller
// uses without linking Helm).
type Ref = chartref.Ref

// ParseRef reverses Ref.String.
func ParseRef(s string) (Ref, error) { return chartref.Parse(s) }

// IsOCI reports whether repoURL names an OCI registry: oci://host/path.
func IsOCI(repoURL string) bool { return strings.HasPrefix(repoURL, "oci://") }

// ErrNoVersion is wrapped when no chart version matches.
var ErrNoVersion = chartproc.ErrNoVersion

// Manager resolves and fetches charts.
type Manager struct {
	opts   Options
	client *http.Client
	tr     *http.Transport

	mu    sync.Mutex
	fetch map[string]*sync.Mutex // digest → one download at a time
}

// New returns a Manager.
func New(opts Options) (*Manager, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("chart cache: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if len(opts.CABundle) > 0 && !pool.AppendCertsFromPEM(opts.CABundle) {
		return nil, errors.New("chart repositories: the CA bundle holds no certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pool
	tr.Proxy = nil
	// One request per connection, each connection reading at most
	// MaxBytes: a repository cannot make the hub read without end.
	tr.DisableKeepAlives = true
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &cappedConn{Conn: c, left: opts.MaxBytes + 64<<10}, nil
	}
	return &Manager{
		opts:   opts,
		tr:     tr,
		client: &http.Client{Transport: tr, Timeout: opts.Timeout},
		fetch:  map[string]*sync.Mutex{},
	}, nil
}

// Resolve returns the newest version of chart in repoURL matching
// constraint (an exact version, a semver range such as "1.2.x" or
// "^1.2.0"; empty or "*": the newest release) and its digest.
func (m *Manager) Resolve(ctx context.Context, repoURL, chart, constraint string) (Ref, error) {
	if err := m.checkURL(repoURL); err != nil {
		return Ref{}, err
	}
	if IsOCI(repoURL) {
		return m.resolveOCI(ctx, repoURL, chart, constraint)
	}
	return m.resolveHTTP(ctx, repoURL, chart, constraint)
}

// Fetch returns the directory of the expanded chart ref (its files under
// <dir>/<chart>/), downloading it when it is not cached yet.
func (m *Manager) Fetch(ctx context.Context, repoURL, chart string, ref Ref) (string, error) {
	dir := filepath.Join(m.opts.Dir, digestHex(ref.Digest))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	lock := m.lockFor(ref.Digest)
	lock.Lock()
	defer lock.Unlock()
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	var (
		data []byte
		err  error
	)
	if IsOCI(repoURL) {
		data, err = m.pullOCI(ctx, repoURL, chart, ref.Version)
	} else {
		data, err = m.downloadHTTP(ctx, repoURL, chart, ref.Version)
	}
	if err != nil {
		return "", err
	}
	if got := Digest(data); got != ref.Digest {
		return "", fmt.Errorf("chart %s %s from %s: digest %s, want %s (the repository changed a published version)", chart, ref.Version, redact(repoURL), got, ref.Digest)
	}
	prepare := func(chartDir string) error { return m.buildDependencies(ctx, chartDir) }
	if err := expand(dir, data, prepare); err != nil {
		return "", fmt.Errorf("chart %s %s from %s: %w", chart, ref.Version, redact(repoURL), err)
	}
	return dir, nil
}

func (m *Manager) lockFor(digest string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.fetch[digest]
	if !ok {
		l = &sync.Mutex{}
		m.fetch[digest] = l
	}
	return l
}

// checkURL allows https://, oci:// and, when allowed, http:// repositories.
func (m *Manager) checkURL(repoURL string) error {
	switch {
	case strings.HasPrefix(repoURL, "https://"), IsOCI(repoURL):
		return nil
	case strings.HasPrefix(repoURL, "http://") && m.opts.AllowInsecureHTTP:
		return nil
	case strings.HasPrefix(repoURL, "http://"):
		return fmt.Errorf("chart repository %s: plain http is not allowed (the hub's --allow-insecure-http)", redact(repoURL))
	}
	return fmt.Errorf("chart repository %q: want an https:// or oci:// URL", redact(repoURL))
}

// auth returns the credentials for url; none over plain http.
func (m *Manager) auth(url string) (string, string, bool, error) {
	if m.opts.Auth == nil || strings.HasPrefix(url, "http://") {
		return "", "", false, nil
	}
	return m.opts.Auth(url)
}

// Digest is the digest of a chart archive: "sha256:<hex>".
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func digestHex(d string) string { return strings.TrimPrefix(d, "sha256:") }

// redact drops user information from a URL for messages.
func redact(u string) string { return chartproc.Redact(u) }

// cappedConn fails reads past its budget.
type cappedConn struct {
	net.Conn
	left int64
}

func (c *cappedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errTooBig
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

var errTooBig = errors.New("response larger than the size limit")
