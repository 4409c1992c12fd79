package engines

import (
	"errors"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// chartSummary is what a loaded chart holds, for comparing loaders: every
// file of the chart and of its subcharts, by chart, with its content.
func chartSummary(c *chart.Chart) map[string]string {
	out := map[string]string{}
	var add func(prefix string, c *chart.Chart)
	add = func(prefix string, c *chart.Chart) {
		p := prefix + c.Name() + "/"
		for _, f := range c.Raw {
			out[p+"raw:"+f.Name] = string(f.Data)
		}
		for _, f := range c.Templates {
			out[p+"template:"+f.Name] = string(f.Data)
		}
		for _, f := range c.Files {
			out[p+"file:"+f.Name] = string(f.Data)
		}
		deps := c.Dependencies()
		sort.Slice(deps, func(i, j int) bool { return deps[i].Name() < deps[j].Name() })
		for _, d := range deps {
			add(p, d)
		}
	}
	add("", c)
	return out
}

// TestReadChartMatchesLoadDir loads charts both with helm's LoadDir (which
// walks the folder itself) and with readChart (files read through the
// root, handed to LoadFiles) and compares everything loaded: the test
// repository's charts, and one with a .helmignore (file and folder
// rules), helm's default templates/.* rule, a UTF-8 BOM, a folder
// subchart, an archived (.tgz) subchart and a link to a folder of the
// repository.
func TestReadChartMatchesLoadDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"shared/_helpers.tpl":             `{{ define "shared.name" }}shared{{ end }}`,
		"c/Chart.yaml":                    "apiVersion: v2\nname: c\nversion: 0.1.0\ndependencies:\n- name: sub\n- name: arch\n",
		"c/values.yaml":                   "\xEF\xBB\xBFreplicas: 2\n",
		"c/.helmignore":                   "# comment\n*.bak\nsecret/\nfiles/drop.txt\n",
		"c/templates/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ include \"shared.name\" . }}}\n",
		"c/templates/.hidden.yaml":        "not: loaded\n",
		"c/templates/old.yaml.bak":        "not: loaded\n",
		"c/secret/key.pem":                "not loaded\n",
		"c/files/drop.txt":                "not loaded\n",
		"c/files/keep.txt":                "loaded\n",
		"c/charts/sub/Chart.yaml":         "apiVersion: v2\nname: sub\nversion: 0.2.0\n",
		"c/charts/sub/templates/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: sub}\n",
		"arch/Chart.yaml":                 "apiVersion: v2\nname: arch\nversion: 0.3.0\n",
		"arch/templates/a.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: arch}\n",
	})
	if err := os.Symlink("../../shared", filepath.Join(dir, "c", "templates", "shared")); err != nil {
		t.Fatal(err)
	}
	arch, err := loader.LoadDir(filepath.Join(dir, "arch"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chartutil.Save(arch, filepath.Join(dir, "c", "charts")); err != nil {
		t.Fatal(err)
	}

	charts := map[string]string{"c": dir}
	repo := repoRootForTest(t)
	for _, c := range []string{"helm/full", "helm/mychart", "helm/missingdep", "helm/oldkube", "helm/badtemplate"} {
		charts[c] = repo
	}
	for chartDir, rootDir := range charts {
		t.Run(chartDir, func(t *testing.T) {
			want, err := loader.LoadDir(filepath.Join(rootDir, filepath.FromSlash(chartDir)))
			if err != nil {
				t.Fatal(err)
			}
			root, err := render.OpenRoot(rootDir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			got, err := readChart(root, chartDir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(chartSummary(want), chartSummary(got)); diff != "" {
				t.Errorf("readChart differs from LoadDir (-LoadDir +readChart):\n%s", diff)
			}
			if diff := cmp.Diff(want.Values, got.Values); diff != "" {
				t.Errorf("values differ (-LoadDir +readChart):\n%s", diff)
			}
			if chartDir == "c" {
				s := strings.Join(sortedKeys(chartSummary(got)), "\n")
				for _, name := range []string{"c/template:templates/shared/_helpers.tpl", "c/file:files/keep.txt", "c/sub/template:templates/svc.yaml", "c/arch/template:templates/a.yaml"} {
					if !strings.Contains(s, name) {
						t.Errorf("%s not loaded; loaded:\n%s", name, s)
					}
				}
				for _, name := range []string{".hidden", ".bak", "key.pem", "drop.txt"} {
					if strings.Contains(s, name) {
						t.Errorf("%s loaded; loaded:\n%s", name, s)
					}
				}
			}
		})
	}
}

// TestReadChartLinkCycle: a link to a folder that contains it is an error
// (helm's own walk would follow it until the path is too long).
func TestReadChartLinkCycle(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n"})
	if err := os.Symlink("..", filepath.Join(dir, "c", "loop")); err != nil {
		t.Fatal(err)
	}
	root, err := render.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := readChart(root, "c"); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("readChart with a link cycle: %v", err)
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReadChartCheckoutMetadata: a chart at the root of a checkout does
// not load the checkout's .git folder, and a left-out link its .helmignore
// ignores is no error (one it does not ignore is, naming it).
func TestReadChartCheckoutMetadata(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Chart.yaml":                 "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		".helmignore":                "ignored.txt\n",
		"templates/cm.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
		gitsource.LeftOutFile:        `{"ignored.txt": "a test", "templates/bad.yaml": "a test"}`,
		"templates/_placeholder.tpl": "",
	})
	root, err := render.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = readChart(root, ".")
	if !errors.Is(err, render.ErrLeftOut) || !strings.Contains(err.Error(), "templates/bad.yaml") {
		t.Fatalf("readChart: %v, want templates/bad.yaml left out", err)
	}
	writeFiles(t, dir, map[string]string{gitsource.LeftOutFile: `{"ignored.txt": "a test"}`})
	root2, err := render.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root2.Close()
	c, err := readChart(root2, ".")
	if err != nil {
		t.Fatal(err)
	}
	for name := range chartSummary(c) {
		if strings.Contains(name, ".git") || strings.Contains(name, "ignored.txt") {
			t.Errorf("loaded %s", name)
		}
	}
}

// TestReadChartHugeFile: a chart file over helm's file size limit is
// refused by its size, naming it, as helm's LoadDir refuses it.
func TestReadChartHugeFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"c/Chart.yaml":          "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"c/templates/huge.yaml": "# " + strings.Repeat("x", int(loader.MaxDecompressedFileSize)) + "\n",
	})
	root, err := render.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := readChart(root, "c"); err == nil || !strings.Contains(err.Error(), `chart file "huge.yaml" is larger than the maximum file size`) {
		t.Errorf("readChart: %v, want huge.yaml over the size limit", err)
	}
}
