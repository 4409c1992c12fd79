//go:build !unit

package chartsource_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource"
	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartproc"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
	"github.com/flotilla-cd/flotilla/hub/testsupport/chartrepo"
)

// TestMain makes the test binary a chart worker when a pool of
// chartWorkers starts it (as flotilla-render with ChartWorkerArg).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == renderproc.ChartWorkerArg {
		if err := renderproc.Serve(context.Background(), chartsource.Serve); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// chartWorkers returns a pool of chart workers (this test binary, no
// namespaces: they reach the repositories on loopback).
func chartWorkers(t *testing.T) *renderproc.Pool {
	t.Helper()
	o := renderproc.DefaultOptions()
	o.Command = []string{os.Args[0], renderproc.ChartWorkerArg}
	o.NoNamespaces = true
	p := renderproc.New(o, nil)
	t.Cleanup(p.Close)
	return p
}

// TestWorkerSendsOnlyNeededCredentials: a chart from one basic-auth
// repository depends on a chart of another; fetched through chart
// workers, the hub is asked for the credentials of these two repositories
// only (the worker asks for the dependency's when it has read the chart),
// never for the third one it has, and the chart comes with its dependency.
func TestWorkerSendsOnlyNeededCredentials(t *testing.T) {
	main := chartrepo.New(t, "main", "pw-main")
	dep := chartrepo.New(t, "dep", "pw-dep")
	dep.Add(chart.Metadata{Name: "base", Version: "1.0.3"}, map[string]string{"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n"})
	main.Add(chart.Metadata{Name: "web", Version: "1.2.0", Dependencies: []*chart.Dependency{{Name: "base", Version: "~1.0.0", Repository: dep.URL}}},
		map[string]string{"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"})
	creds := map[string][2]string{main.URL: {"main", "pw-main"}, dep.URL: {"dep", "pw-dep"}, "https://other.example.com/": {"other", "pw-other"}}
	var mu sync.Mutex
	var asked []string
	auth := func(url string) (string, string, bool, error) {
		mu.Lock()
		asked = append(asked, url)
		mu.Unlock()
		for prefix, c := range creds {
			if strings.HasPrefix(url, prefix) {
				return c[0], c[1], true, nil
			}
		}
		return "", "", false, nil
	}
	ca := append(append([]byte(nil), main.CA...), dep.CA...)
	c := chartproc.NewClient(chartWorkers(t), chartproc.Config{Dir: t.TempDir(), CABundle: ca}, auth, "git-fetch-timeout")
	ctx := t.Context()
	ref, err := c.Resolve(ctx, main.URL, "web", "1.2.x")
	if err != nil {
		t.Fatal(err)
	}
	if ref.Version != "1.2.0" || !strings.HasPrefix(ref.Digest, "sha256:") {
		t.Errorf("resolved %+v, want 1.2.0 and a digest", ref)
	}
	dir, err := c.Fetch(ctx, main.URL, "web", ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := vendored(t, dir); len(got) != 1 || got[0] != "base-1.0.3" {
		t.Errorf("dependencies of web: %v, want [base-1.0.3]", got)
	}
	mu.Lock()
	got := slices.Compact(slices.Sorted(slices.Values(asked)))
	mu.Unlock()
	want := slices.Sorted(slices.Values([]string{main.URL, dep.URL}))
	if !slices.Equal(got, want) {
		t.Errorf("credentials asked for %q, want those of the chart's and the dependency's repositories only, %q", got, want)
	}
	// A second fetch is served from the cache, without a worker.
	if again, err := c.Fetch(ctx, main.URL, "web", ref); err != nil || again != dir {
		t.Errorf("second fetch: %q, %v; want %q", again, err, dir)
	}
}

// TestWorkerErrors: a version that does not exist is an error wrapping
// ErrNoVersion that names the chart; a wrong password names the
// repository, as in-process.
func TestWorkerErrors(t *testing.T) {
	r := chartrepo.New(t, "ci", "s3cret")
	addWeb(r, "1.0.0")
	auth := func(string) (string, string, bool, error) { return "ci", "s3cret", true, nil }
	c := chartproc.NewClient(chartWorkers(t), chartproc.Config{Dir: t.TempDir(), CABundle: r.CA}, auth, "git-fetch-timeout")
	_, err := c.Resolve(t.Context(), r.URL, "web", "2.x")
	if !errors.Is(err, chartsource.ErrNoVersion) || !strings.Contains(err.Error(), "chart web 2.x") {
		t.Errorf("resolve 2.x: %v, want ErrNoVersion naming chart web 2.x", err)
	}
	bad := chartproc.NewClient(chartWorkers(t), chartproc.Config{Dir: t.TempDir(), CABundle: r.CA},
		func(string) (string, string, bool, error) { return "ci", "wrong", true, nil }, "git-fetch-timeout")
	_, err = bad.Resolve(t.Context(), r.URL, "web", "")
	if err == nil || !strings.Contains(err.Error(), "chart web") {
		t.Errorf("resolve with a wrong password: %v, want an error naming chart web", err)
	}
	bad2 := chartproc.NewClient(chartWorkers(t), chartproc.Config{Dir: t.TempDir(), CABundle: r.CA},
		func(string) (string, string, bool, error) {
			return "", "", false, errors.New("credentials file unreadable")
		}, "git-fetch-timeout")
	_, err = bad2.Resolve(t.Context(), r.URL, "web", "")
	if err == nil || !strings.Contains(err.Error(), "credentials file unreadable") {
		t.Errorf("resolve when the credentials lookup fails: %v, want its error", err)
	}
}
