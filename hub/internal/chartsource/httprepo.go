package chartsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/repo"
)

// get fetches url with Helm's HTTP getter: the repository's credentials
// (never passed to another host), the Manager's deadline, CA bundle and
// size limit.
func (m *Manager) get(ctx context.Context, repoURL, url string) (*bytes.Buffer, error) {
	g, err := getter.NewHTTPGetter(getter.WithTransport(m.tr), getter.WithTimeout(m.opts.Timeout))
	if err != nil {
		return nil, err
	}
	opts := []getter.Option{getter.WithURL(repoURL), getter.WithPassCredentialsAll(false)}
	user, pass, ok, err := m.auth(repoURL)
	if err != nil {
		return nil, err
	}
	if ok {
		opts = append(opts, getter.WithBasicAuth(user, pass))
	}
	type result struct {
		b   *bytes.Buffer
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := g.Get(url, opts...)
		done <- result{b, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-done:
		// Helm's getter does not wrap the transport's error.
		if r.err != nil && (errors.Is(r.err, errTooBig) || strings.Contains(r.err.Error(), errTooBig.Error())) {
			return nil, fmt.Errorf("%s: more than %d bytes: %w", redactURL(url), m.opts.MaxBytes, errTooBig)
		}
		return r.b, r.err
	}
}

// index downloads and parses repoURL's index.yaml.
func (m *Manager) index(ctx context.Context, repoURL string) (*repo.IndexFile, error) {
	u := strings.TrimSuffix(repoURL, "/") + "/index.yaml"
	b, err := m.get(ctx, repoURL, u)
	if err != nil {
		return nil, fmt.Errorf("index of chart repository %s: %w", redact(repoURL), err)
	}
	// repo.LoadIndexFile reads a file; keep the index next to the charts.
	f, err := os.CreateTemp(m.opts.Dir, "index-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(b.Bytes())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, werr
	}
	idx, err := repo.LoadIndexFile(f.Name())
	if err != nil {
		return nil, fmt.Errorf("index of chart repository %s: %w", redact(repoURL), err)
	}
	return idx, nil
}

func (m *Manager) resolveHTTP(ctx context.Context, repoURL, chart, constraint string) (Ref, error) {
	idx, err := m.index(ctx, repoURL)
	if err != nil {
		return Ref{}, fmt.Errorf("chart %s: %w", chart, err)
	}
	cv, err := idx.Get(chart, strings.TrimSpace(strings.TrimPrefix(constraint, "*")))
	if err != nil {
		return Ref{}, fmt.Errorf("chart %s %s in %s: %w: %v", chart, orAny(constraint), redact(repoURL), ErrNoVersion, err)
	}
	if len(cv.URLs) == 0 {
		return Ref{}, fmt.Errorf("chart %s %s in %s: the index gives no URL", chart, cv.Version, redact(repoURL))
	}
	ref := Ref{Version: cv.Version}
	if d := cv.Digest; d != "" {
		ref.Digest = "sha256:" + strings.TrimPrefix(d, "sha256:")
		return ref, nil
	}
	// An index without digests: the archive's own digest names it.
	data, err := m.downloadHTTP(ctx, repoURL, chart, cv.Version)
	if err != nil {
		return Ref{}, err
	}
	ref.Digest = Digest(data)
	dir := filepath.Join(m.opts.Dir, digestHex(ref.Digest))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		prepare := func(chartDir string) error { return m.buildDependencies(ctx, chartDir) }
		if err := expand(dir, data, prepare); err != nil {
			return Ref{}, fmt.Errorf("chart %s %s from %s: %w", chart, cv.Version, redact(repoURL), err)
		}
	}
	return ref, nil
}

// downloadHTTP downloads version of chart from repoURL (the URL its index
// gives, relative URLs resolved against the repository).
func (m *Manager) downloadHTTP(ctx context.Context, repoURL, chart, version string) ([]byte, error) {
	idx, err := m.index(ctx, repoURL)
	if err != nil {
		return nil, err
	}
	cv, err := idx.Get(chart, version)
	if err != nil || cv.Version != version || len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %s %s is no longer in %s", chart, version, redact(repoURL))
	}
	u, err := repo.ResolveReferenceURL(repoURL, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart %s %s in %s: URL %q: %w", chart, version, redact(repoURL), cv.URLs[0], err)
	}
	if strings.HasPrefix(u, "http://") && !m.opts.AllowInsecureHTTP {
		return nil, fmt.Errorf("chart %s %s in %s: its URL %s is plain http", chart, version, redact(repoURL), redactURL(u))
	}
	b, err := m.get(ctx, repoURL, u)
	if err != nil {
		return nil, fmt.Errorf("download chart %s %s from %s: %w", chart, version, redact(repoURL), err)
	}
	return b.Bytes(), nil
}

func orAny(c string) string {
	if c == "" {
		return "(any version)"
	}
	return c
}

// redactURL drops user information and the query from a URL.
func redactURL(u string) string {
	u, _, _ = strings.Cut(redact(u), "?")
	return u
}
