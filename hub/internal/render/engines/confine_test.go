//go:build !unit

package engines

import (
	"context"
	"errors"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

const secretText = "TOPSECRET-next-to-the-checkout"

// attackTree writes, under root, the chained links of issue 13's finding
// 1 (the folder link p/q/r/s/up climbs four levels to stuff; box/x passes
// through it to climb out of root to the secret next to it) and sources
// that read box/x: a chart whose files/ is a link to box, a kustomization
// whose generator reads box/x through a link, and a plain folder with a
// link to box/x. links, when set, are made on disk (a folder or a checkout
// written before the fix); otherwise they are returned to be committed.
func attackTree(t *testing.T, root string) (files map[string]string, links map[string]string) {
	t.Helper()
	files = map[string]string{
		"stuff/readme.txt":       "plain\n",
		"p/q/r/s/box/readme.txt": "links\n",
		"chart/Chart.yaml":       "apiVersion: v2\nname: loot\nversion: 0.1.0\n",
		"chart/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: loot}
data:
{{- range $path, $_ := .Files.Glob "files/*" }}
  {{ base $path }}: {{ $.Files.Get $path | quote }}
{{- end }}
`,
		"kz/kustomization.yaml":  "configMapGenerator:\n- name: loot\n  files: [files/x]\n",
		"good/Chart.yaml":        "apiVersion: v2\nname: good\nversion: 0.1.0\n",
		"good/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n",
	}
	links = map[string]string{
		"p/q/r/s/up":     "../../../../stuff",
		"p/q/r/s/box/x":  "../up/../../secret.txt",
		"chart/files":    "../p/q/r/s/box",
		"kz/files":       "../p/q/r/s/box",
		"plain/x.yaml":   "../p/q/r/s/box/x",
		"plain/abs.yaml": "/etc/hostname",
		"plain/out.yaml": "../../secret.txt",
		"plain/l2l.yaml": "x.yaml",
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return files, links
}

func renderPath(t *testing.T, root, p string) (string, error) {
	t.Helper()
	in := render.Input{Root: root, Source: app.Source{Path: p}, AppName: "a", Namespace: "ns"}
	objs, err := newRenderer(render.Options{}).Render(context.Background(), render.CacheKey(p, in), in)
	return string(dump(root, objs, nil)), err
}

// TestRenderLinksOnDisk renders sources of a folder whose links are all on
// disk (as a checkout written before the fix, or any folder): every read
// goes through the root, so each source that reaches the secret fails with
// render.ErrOutsideRoot and no output holds it; the good chart renders.
func TestRenderLinksOnDisk(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "secret.txt"), []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "repo")
	attackTree(t, root)
	if b, err := os.ReadFile(filepath.Join(root, "chart", "files", "x")); err != nil || string(b) != secretText {
		t.Fatalf("the premise: chart/files/x reads the secret on disk: %q, %v", b, err)
	}
	for _, p := range []string{"chart", "kz", "plain"} {
		t.Run(p, func(t *testing.T) {
			out, err := renderPath(t, root, p)
			t.Log(err)
			if !errors.Is(err, render.ErrOutsideRoot) {
				t.Errorf("render %s: %v, want render.ErrOutsideRoot", p, err)
			}
			if strings.Contains(out, secretText) || err != nil && strings.Contains(err.Error(), secretText) {
				t.Errorf("render %s shows the secret", p)
			}
		})
	}
	if out, err := renderPath(t, root, "good"); err != nil || !strings.Contains(out, "name: fine") {
		t.Errorf("render good: %q, %v", out, err)
	}
}

// TestRenderLeftOutLinks checks the attack tree out of a real git repository
// through gitsource (which leaves the chained, absolute, escaping and
// link-to-link links out): each source that reads a left-out link fails
// with render.ErrLeftOut and an error naming the link, and the good chart of the
// same commit renders.
func TestRenderLeftOutLinks(t *testing.T) {
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "r")
	attackTree(t, repo.Work)
	commit, err := repo.CommitAndPush("attack")
	if err != nil {
		t.Fatal(err)
	}
	m := gitsource.New(gitsource.Options{Dir: filepath.Join(dir, "state"), PollInterval: time.Hour, AllowInsecureHTTP: true}, hclog.NewNullLogger())
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	root, err := m.Checkout(repo.URL, commit)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, names string }{
		{"chart", "p/q/r/s/box/x"},
		{"kz", "p/q/r/s/box/x"},
		{"plain", "plain/abs.yaml"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := renderPath(t, root, tc.path)
			t.Log(err)
			if !errors.Is(err, render.ErrLeftOut) || !strings.Contains(err.Error(), tc.names) {
				t.Errorf("render %s: %v, want render.ErrLeftOut naming %s", tc.path, err, tc.names)
			}
		})
	}
	if out, err := renderPath(t, root, "good"); err != nil || !strings.Contains(out, "name: fine") {
		t.Errorf("render good: %q, %v", out, err)
	}
}

// TestRenderLinksInside: links that stay in the repository keep working,
// chained too: a kustomization's base through a folder link, a chart's
// templates through a folder link, a plain folder's file link to a link.
func TestRenderLinksInside(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"common/base/kustomization.yaml": "resources: [cm.yaml]\n",
		"common/base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-base}\n",
		"kz/kustomization.yaml":          "resources: [base]\nnamePrefix: kz-\n",
		"shared/cm.yaml":                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
		"chart/Chart.yaml":               "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"manifests/real.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: real}\n",
	})
	for name, target := range map[string]string{
		"kz/base":           "../common/base",
		"chart/templates":   "../shared",
		"manifests/a.yaml":  "b.yaml",
		"manifests/b.yaml":  "real.yaml",
		"plain/linked.yaml": "../manifests/a.yaml",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]string{"kz": "name: kz-from-base", "chart": "name: shared", "plain": "name: real"} {
		if out, err := renderPath(t, root, p); err != nil || !strings.Contains(out, want) {
			t.Errorf("render %s: %q, %v; want %q", p, out, err, want)
		}
	}
}
