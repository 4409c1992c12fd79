//go:build !unit

package chartsource_test

import (
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource"
	"github.com/flotilla-cd/flotilla/hub/testsupport/chartrepo"
)

// vendored returns "<name>-<version>" of every dependency the fetched chart
// carries.
func vendored(t *testing.T, dir string) []string {
	t.Helper()
	name, err := chartsource.ChartDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadDir(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ch.Dependencies() {
		out = append(out, d.Name()+"-"+d.Metadata.Version)
	}
	return out
}

// TestDependencyFromRepository: a chart whose Chart.yaml needs "base"
// (~1.0.0) from the same basic-auth repository, not vendored; the fetch
// builds it with Helm's downloader, with the repository's credentials.
func TestDependencyFromRepository(t *testing.T) {
	r := chartrepo.New(t, "ci", "s3cret")
	for _, v := range []string{"1.0.0", "1.0.3", "1.1.0"} {
		r.Add(chart.Metadata{Name: "base", Version: v}, map[string]string{"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n"})
	}
	r.Add(chart.Metadata{Name: "web", Version: "1.2.0", Dependencies: []*chart.Dependency{{Name: "base", Version: "~1.0.0", Repository: r.URL}}},
		map[string]string{"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"})
	ctx := t.Context()
	m := manager(t, r, "ci", "s3cret", 0)
	ref, err := m.Resolve(ctx, r.URL, "web", "1.2.x")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := m.Fetch(ctx, r.URL, "web", ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := vendored(t, dir); len(got) != 1 || got[0] != "base-1.0.3" {
		t.Errorf("dependencies of web %s: %v, want [base-1.0.3] (the newest ~1.0.0 in the repository)", ref, got)
	}

	// Without the repository's password the dependency cannot be built:
	// the error names the chart.
	other := chartrepo.New(t, "ci", "s3cret")
	other.Add(chart.Metadata{Name: "web", Version: "1.2.0", Dependencies: []*chart.Dependency{{Name: "base", Version: "~1.0.0", Repository: r.URL}}},
		map[string]string{"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"})
	m2, err := chartsource.New(chartsource.Options{Dir: t.TempDir(), CABundle: append(append([]byte(nil), r.CA...), other.CA...),
		Auth: func(url string) (string, string, bool, error) {
			if strings.HasPrefix(url, other.URL) {
				return "ci", "s3cret", true, nil
			}
			return "ci", "wrong", true, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ref2, err := m2.Resolve(ctx, other.URL, "web", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Fetch(ctx, other.URL, "web", ref2); err == nil || !strings.Contains(err.Error(), "dependencies of chart web") {
		t.Errorf("dependency with wrong credentials: %v, want an error naming the chart's dependencies", err)
	}
}

// TestOCIRegistry: a real registry (distribution, built from the module
// proxy and run as a process, TLS and htpasswd). Charts pushed with Helm's
// registry client resolve by constraint, a dependency comes from the
// registry, a new patch is picked by 1.2.x and a new minor is not, wrong
// credentials and a stopped registry are errors naming chart and registry,
// and a fetched chart stays usable while the registry is down.
func TestOCIRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs an OCI registry")
	}
	reg := chartrepo.StartRegistry(t, "pusher", "oci-pass")
	src := t.TempDir()
	reg.Push(t, "charts", chartrepo.Package(t, src, "base", "1.0.0"))
	dep := &chart.Dependency{Name: "base", Version: "1.0.0", Repository: reg.URL("charts")}
	reg.Push(t, "charts", chartrepo.Package(t, src, "web", "1.2.0", dep))
	reg.Push(t, "charts", chartrepo.Package(t, src, "web", "1.3.0", dep))
	auth := func(pass string) chartsource.Auth {
		return func(url string) (string, string, bool, error) {
			return "pusher", pass, strings.HasPrefix(url, "https://"+reg.Host), nil
		}
	}
	m, err := chartsource.New(chartsource.Options{Dir: t.TempDir(), CABundle: reg.CA, Auth: auth("oci-pass")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ref, err := m.Resolve(ctx, reg.URL("charts"), "web", "1.2.x")
	if err != nil || ref.Version != "1.2.0" {
		t.Fatalf("resolve 1.2.x: %v, %v; want 1.2.0", ref, err)
	}
	dir, err := m.Fetch(ctx, reg.URL("charts"), "web", ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := vendored(t, dir); len(got) != 1 || got[0] != "base-1.0.0" {
		t.Errorf("dependencies: %v, want [base-1.0.0] from the registry", got)
	}
	reg.Push(t, "charts", chartrepo.Package(t, src, "web", "1.2.1", dep))
	if ref, err := m.Resolve(ctx, reg.URL("charts"), "web", "1.2.x"); err != nil || ref.Version != "1.2.1" {
		t.Errorf("after pushing 1.2.1: %v, %v; want 1.2.1", ref, err)
	}
	if ref, err := m.Resolve(ctx, reg.URL("charts"), "web", "^1.2.0"); err != nil || ref.Version != "1.3.0" {
		t.Errorf("^1.2.0: %v, %v; want 1.3.0", ref, err)
	}

	bad, err := chartsource.New(chartsource.Options{Dir: t.TempDir(), CABundle: reg.CA, Auth: auth("nope")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Resolve(ctx, reg.URL("charts"), "web", "1.2.x"); err == nil || !strings.Contains(err.Error(), "chart web") || !strings.Contains(err.Error(), reg.URL("charts")) {
		t.Errorf("wrong credentials: %v, want an error naming chart and registry", err)
	} else if strings.Contains(err.Error(), "nope") {
		t.Errorf("the error discloses the password: %v", err)
	}

	reg.Stop()
	if _, err := m.Resolve(ctx, reg.URL("charts"), "web", "1.2.x"); err == nil || !strings.Contains(err.Error(), reg.URL("charts")) {
		t.Errorf("registry down: %v, want an error naming the registry", err)
	}
	if again, err := m.Fetch(ctx, reg.URL("charts"), "web", ref); err != nil || again != dir {
		t.Errorf("fetch of a cached chart while the registry is down: %q, %v", again, err)
	}
}
