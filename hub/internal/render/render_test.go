package render

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// The core without engines renders plain YAML and refuses, naming the
// reason, what needs an engine (package engines tests the engines).

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPlainYAMLWithoutEngines(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"web/b.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
		"web/a.yml":      "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"web/x.txt":      "not a manifest",
		"web/c.json":     `[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]`,
		"web/sub/d.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n",
	})
	r := New(Options{})
	in := Input{Root: root, Source: app.Source{Path: "web"}, Namespace: "shop", AppName: "web"}
	objs, err := r.Render(t.Context(), CacheKey("tree", in), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	want := []string{"ConfigMap/a", "ConfigMap/b", "ConfigMap/c", "Service/a"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if r.NeedsCapabilities(root, in.Source) {
		t.Error("a plain directory needs no capabilities")
	}
}

func TestNoEngine(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"chart/Chart.yaml":        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
		"kz/kustomization.yaml":   "resources: [cm.yaml]\n",
		"kz/cm.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k}\n",
		"js/main.jsonnet":         "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'j'}}",
	})
	r := New(Options{})
	for _, p := range []string{"chart", "kz", "js"} {
		in := Input{Root: root, Source: app.Source{Path: p}, Namespace: "shop", AppName: "web"}
		_, err := r.Render(t.Context(), CacheKey("tree", in), in)
		if !errors.Is(err, ErrNoEngine) || !errors.Is(err, ErrRender) {
			t.Errorf("%s: %v, want ErrRender and ErrNoEngine", p, err)
		}
	}
	if !r.NeedsCapabilities(root, app.Source{Path: "chart"}) {
		t.Error("a Helm chart needs the cluster's capabilities, engines or not")
	}
}
