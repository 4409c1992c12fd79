//go:build !unit

package chartsource_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource"
	"github.com/flotilla-cd/flotilla/hub/testsupport/chartrepo"
)

func manager(t *testing.T, r *chartrepo.Repo, user, pass string, maxBytes int64) *chartsource.Manager {
	t.Helper()
	m, err := chartsource.New(chartsource.Options{
		Dir: t.TempDir(), CABundle: r.CA, MaxBytes: maxBytes,
		Auth: func(url string) (string, string, bool, error) {
			if !strings.HasPrefix(url, r.URL) {
				return "", "", false, nil
			}
			return user, pass, true, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func addWeb(r *chartrepo.Repo, version string) {
	r.Add(chart.Metadata{Name: "web", Version: version}, map[string]string{
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {version: " + version + "}\n",
	})
}

// TestResolveAndFetch: a real HTTPS repository with basic auth. A
// constraint resolves to the newest matching version; the chart is
// downloaded once, checked against the index's digest and expanded.
func TestResolveAndFetch(t *testing.T) {
	r := chartrepo.New(t, "ci", "s3cret")
	for _, v := range []string{"1.2.0", "1.2.1", "1.3.0", "2.0.0-rc.1"} {
		addWeb(r, v)
	}
	m := manager(t, r, "ci", "s3cret", 0)
	ctx := t.Context()
	for _, tc := range []struct{ constraint, want string }{
		{"1.2.x", "1.2.1"},
		{"~1.2.0", "1.2.1"},
		{"^1.2.0", "1.3.0"},
		{"1.2.0", "1.2.0"},
		{"", "1.3.0"},
		{"*", "1.3.0"},
		{">=1.0 <2", "1.3.0"},
	} {
		ref, err := m.Resolve(ctx, r.URL, "web", tc.constraint)
		if err != nil || ref.Version != tc.want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", tc.constraint, ref, err, tc.want)
			continue
		}
		if want := chartsource.Digest(r.Archive("web", tc.want)); ref.Digest != want {
			t.Errorf("Resolve(%q) digest %s, want %s", tc.constraint, ref.Digest, want)
		}
	}
	ref, err := m.Resolve(ctx, r.URL, "web", "1.2.x")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := m.Fetch(ctx, r.URL, "web", ref)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := chartsource.ChartDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, sub, "templates", "cm.yaml"))
	if err != nil || !strings.Contains(string(b), "version: 1.2.1") {
		t.Errorf("expanded chart: %q, %v", b, err)
	}
	// Cached by digest: served with the repository down.
	r.SetDown(true)
	if again, err := m.Fetch(ctx, r.URL, "web", ref); err != nil || again != dir {
		t.Errorf("cached fetch: %s, %v", again, err)
	}
	if _, err := m.Resolve(ctx, r.URL, "web", "1.2.x"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("resolve with the repository down: %v, want its 503", err)
	}
}

// TestRepositoryRefusals: wrong credentials, no matching version, a
// published version whose archive changed, a repository larger than the
// limit, and plain http: each a clear error naming the repository and
// chart.
func TestRepositoryRefusals(t *testing.T) {
	r := chartrepo.New(t, "ci", "s3cret")
	addWeb(r, "1.0.0")
	ctx := t.Context()

	_, err := manager(t, r, "ci", "wrong", 0).Resolve(ctx, r.URL, "web", "1.x")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), r.URL) {
		t.Errorf("wrong password: %v", err)
	}
	m := manager(t, r, "ci", "s3cret", 0)
	if _, err := m.Resolve(ctx, r.URL, "web", "3.x"); !errors.Is(err, chartsource.ErrNoVersion) || !strings.Contains(err.Error(), "chart web 3.x") {
		t.Errorf("no matching version: %v", err)
	}
	if _, err := m.Resolve(ctx, r.URL, "nope", ""); !errors.Is(err, chartsource.ErrNoVersion) {
		t.Errorf("unknown chart: %v", err)
	}
	ref, err := m.Resolve(ctx, r.URL, "web", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	other := chartrepo.New(t, "ci", "s3cret")
	addWeb(other, "9.9.9")
	r.Replace("web", "1.0.0", other.Archive("web", "9.9.9"))
	if _, err := m.Fetch(ctx, r.URL, "web", ref); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("changed archive: %v", err)
	}
	big := chartrepo.New(t, "ci", "s3cret")
	big.Add(chart.Metadata{Name: "big", Version: "1.0.0", Description: strings.Repeat("x", 200<<10)}, map[string]string{"templates/a.yaml": "a: 1\n"})
	if _, err := manager(t, big, "ci", "s3cret", 64<<10).Resolve(ctx, big.URL, "big", ""); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("index over the size limit: %v", err)
	}
	if _, err := m.Resolve(ctx, "http://127.0.0.1:1/charts", "web", ""); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("plain http: %v", err)
	}
}
