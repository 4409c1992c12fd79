package chartsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/registry"
)

// ociRef is the registry reference of chart in an oci:// repository:
// host/path/chart.
func ociRef(repoURL, chart string) string {
	return strings.TrimSuffix(strings.TrimPrefix(repoURL, "oci://"), "/") + "/" + chart
}

// registryClient is a Helm registry client with the repository's
// credentials, the Manager's transport (deadline, CA, size limit).
func (m *Manager) registryClient(repoURL string) (*registry.Client, error) {
	opts := []registry.ClientOption{registry.ClientOptHTTPClient(m.client), registry.ClientOptEnableCache(false)}
	if repoURL == "" { // a chart's dependencies, none from a registry
		return registry.NewClient(opts...)
	}
	user, pass, ok, err := m.auth("https://" + strings.TrimPrefix(repoURL, "oci://"))
	if err != nil {
		return nil, err
	}
	if ok {
		opts = append(opts, registry.ClientOptBasicAuth(user, pass))
	}
	// Credentials never go over plain HTTP: a registry the hub has
	// credentials for is reached over TLS even on loopback.
	if !ok && m.opts.AllowInsecureHTTP && m.plainHTTP(repoURL) {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	return registry.NewClient(opts...)
}

// plainHTTP reports whether a registry is reached over plain HTTP: only a
// loopback registry, only when insecure HTTP is allowed (tests, local
// registries) and never with credentials.
func (m *Manager) plainHTTP(repoURL string) bool {
	host, _, _ := strings.Cut(strings.TrimPrefix(repoURL, "oci://"), "/")
	return strings.HasPrefix(host, "127.0.0.1:") || strings.HasPrefix(host, "localhost:") || host == "localhost"
}

// withDeadline runs f (Helm's registry client takes no context) and gives
// up when ctx ends; each of its requests is bounded by the client's
// timeout anyway.
func withDeadline[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	case r := <-done:
		return r.v, r.err
	}
}

func (m *Manager) resolveOCI(ctx context.Context, repoURL, chart, constraint string) (Ref, error) {
	c, err := m.registryClient(repoURL)
	if err != nil {
		return Ref{}, err
	}
	ref := ociRef(repoURL, chart)
	tags, err := withDeadline(ctx, func() ([]string, error) { return c.Tags(ref) })
	if err != nil {
		return Ref{}, fmt.Errorf("versions of chart %s in %s: %w", chart, redact(repoURL), err)
	}
	version, err := newest(tags, constraint)
	if err != nil {
		return Ref{}, fmt.Errorf("chart %s %s in %s: %w", chart, orAny(constraint), redact(repoURL), err)
	}
	data, err := m.pullOCI(ctx, repoURL, chart, version)
	if err != nil {
		return Ref{}, err
	}
	r := Ref{Version: version, Digest: Digest(data)}
	return r, nil
}

// newest picks the highest of versions (sorted newest first, as Helm's
// Tags returns them) that constraint allows.
func newest(versions []string, constraint string) (string, error) {
	constraint = strings.TrimSpace(constraint)
	if constraint == "" {
		constraint = "*"
	}
	for _, v := range versions {
		if v == constraint {
			return v, nil
		}
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return "", fmt.Errorf("version constraint %q: %w", constraint, err)
	}
	for _, v := range versions {
		sv, err := semver.NewVersion(v)
		if err == nil && c.Check(sv) {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w (versions: %s)", ErrNoVersion, strings.Join(first(versions, 10), ", "))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

func (m *Manager) pullOCI(ctx context.Context, repoURL, chart, version string) ([]byte, error) {
	c, err := m.registryClient(repoURL)
	if err != nil {
		return nil, err
	}
	res, err := withDeadline(ctx, func() (*registry.PullResult, error) {
		return c.Pull(ociRef(repoURL, chart) + ":" + version)
	})
	if err != nil {
		return nil, fmt.Errorf("pull chart %s %s from %s: %w", chart, version, redact(repoURL), err)
	}
	if int64(len(res.Chart.Data)) > m.opts.MaxBytes {
		return nil, fmt.Errorf("chart %s %s from %s: %d bytes, more than the limit of %d", chart, version, redact(repoURL), len(res.Chart.Data), m.opts.MaxBytes)
	}
	return res.Chart.Data, nil
}
