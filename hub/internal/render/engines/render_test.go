package engines

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

var update = flag.Bool("update", false, "rewrite golden files")

func repoRootForTest(t testing.TB) string {
	t.Helper()
	abs, err := filepath.Abs("testdata/repo")
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// dump writes objects as a YAML stream, or the error with the repository
// root replaced by <repo>.
func dump(root string, objs []*unstructured.Unstructured, err error) []byte {
	if err != nil {
		return []byte("error: " + strings.ReplaceAll(err.Error(), root, "<repo>") + "\n")
	}
	var b bytes.Buffer
	for _, o := range objs {
		y, yerr := yaml.Marshal(o.Object)
		if yerr != nil {
			return []byte("marshal: " + yerr.Error())
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name+".yaml")
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", p, diff)
	}
}

// goldenTest is a source of testdata/repo and its golden file.
type goldenTest struct {
	name    string
	src     app.Source
	ns      string
	wantErr bool
}

// goldenTests are the cases of TestRenderGolden (and of
// TestGoldenInWorkers).
var goldenTests = []goldenTest{
	{name: "plain-flat", src: app.Source{Path: "plain"}},
	{name: "plain-recurse-exclude", src: app.Source{Path: "plain", Directory: &app.Directory{Recurse: true, Exclude: "excluded/*"}}},
	{name: "plain-include", src: app.Source{Path: "plain", Directory: &app.Directory{Recurse: true, Include: "{*.json,sub/*}"}}},
	{name: "guestbook", src: app.Source{Path: "guestbook"}},
	{name: "kustomize-base", src: app.Source{Path: "kustomize/base"}},
	{name: "kustomize-overlay", src: app.Source{Path: "kustomize/overlays/prod"}},
	{name: "kustomize-params", src: app.Source{Path: "kustomize/overlays/prod", Kustomize: &app.Kustomize{
		NamePrefix: "x-", Namespace: "web-override", Images: []string{"nginx=registry.example.com/nginx:1.27"},
		CommonLabels: map[string]string{"team": "a"}, CommonAnnotations: map[string]string{"owner": "a@example.com"},
		Replicas: []app.KustomizeReplica{{Name: "base-web", Count: 5}},
		Patches:  []app.KustomizePatch{{Patch: "- op: add\n  path: /data/extra\n  value: yes-please\n", Target: &app.PatchTarget{Kind: "ConfigMap"}}},
	}}},
	{name: "helm-defaults", src: app.Source{Path: "helm/mychart"}, ns: "shop"},
	{name: "helm-values", ns: "shop", src: app.Source{Path: "helm/mychart", Helm: &app.Helm{
		ValueFiles: []string{"values-prod.yaml"}, Values: "region: eu\nextra: {owner: team-a}\n",
		ValuesObject: map[string]any{"image": map[string]any{"repository": "registry.example.com/nginx"}},
		Parameters:   []app.HelmParameter{{Name: "image.tag", Value: "1.26"}, {Name: "extra.version", Value: "2", ForceString: true}},
		ReleaseName:  "rel", SkipCRDs: true, Namespace: "shop-eu",
	}}},
	{name: "err-broken-yaml", src: app.Source{Path: "broken"}, wantErr: true},
	{name: "err-duplicate", src: app.Source{Path: "dup"}, wantErr: true},
	{name: "err-missing-path", src: app.Source{Path: "nope"}, wantErr: true},
	{name: "err-path-escape", src: app.Source{Path: "../outside"}, wantErr: true},
	{name: "err-kustomize-outside-root", src: app.Source{Path: "kustomize/escape"}, wantErr: true},
	{name: "err-kustomize-remote", src: app.Source{Path: "kustomize/remote"}, wantErr: true},
	{name: "err-helm-missing-chart", src: app.Source{Path: "helm/notachart", Helm: &app.Helm{}}, wantErr: true},
	{name: "err-helm-valuefile-outside", src: app.Source{Path: "helm/mychart", Helm: &app.Helm{ValueFiles: []string{"../../../outside/secret.yaml"}}}, wantErr: true},
	{name: "err-helm-bad-values", src: app.Source{Path: "helm/mychart", Helm: &app.Helm{Values: "replicas: [1"}}, wantErr: true},
	{name: "helm-full", src: app.Source{Path: "helm/full"}, ns: "prod"},
	{name: "helm-full-skip-crds", src: app.Source{Path: "helm/full", Helm: &app.Helm{SkipCRDs: true, ReleaseName: "rel"}}, ns: "prod"},
	{name: "err-helm-missing-dependency", src: app.Source{Path: "helm/missingdep"}, wantErr: true},
	{name: "err-helm-schema", src: app.Source{Path: "helm/full", Helm: &app.Helm{Values: "replicas: 0"}}, wantErr: true},
	{name: "err-helm-template", src: app.Source{Path: "helm/badtemplate"}, wantErr: true},
	{name: "err-helm-kube-version", src: app.Source{Path: "helm/oldkube"}, wantErr: true},
	{name: "jsonnet", ns: "shop", src: app.Source{Path: "jsonnet/app", Directory: &app.Directory{Jsonnet: &app.Jsonnet{
		ExtVars: []app.JsonnetVar{{Name: "env", Value: "prod"}, {Name: "replicas", Value: "3", Code: true}},
		TLAs:    []app.JsonnetVar{{Name: "team", Value: "payments"}},
		Libs:    []string{"jsonnet/vendor"},
	}}}},
	{name: "err-jsonnet-missing-extvar", src: app.Source{Path: "jsonnet/app", Directory: &app.Directory{Jsonnet: &app.Jsonnet{Libs: []string{"jsonnet/vendor"}}}}, wantErr: true},
	{name: "err-jsonnet-import-outside", src: app.Source{Path: "jsonnet/escape"}, wantErr: true},
	{name: "err-jsonnet-broken", src: app.Source{Path: "jsonnet/broken"}, wantErr: true},
}

// TestRenderGolden renders each source of testdata/repo and compares the
// objects (or the error) with testdata/golden/<case>.yaml.
func TestRenderGolden(t *testing.T) {
	root := repoRootForTest(t)
	for _, tt := range goldenTests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRenderer(render.Options{})
			in := render.Input{Root: root, Source: tt.src, Namespace: tt.ns, AppName: "web"}
			objs, err := r.Render(context.Background(), render.CacheKey("tree", in), in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, render.ErrRender) {
				t.Errorf("%v does not wrap render.ErrRender", err)
			}
			golden(t, tt.name, dump(root, objs, err))
		})
	}
}

func TestSymlinkOutsideRefused(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.yaml")
	if err := os.WriteFile(secret, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, d := range []string{"plain", "chart/templates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "chart/Chart.yaml"), []byte("apiVersion: v2\nname: c\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"plain/link.yaml", "chart/templates/link.yaml"} {
		if err := os.Symlink(secret, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "dirlink")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"plain", "chart", "dirlink"} {
		t.Run(path, func(t *testing.T) {
			in := render.Input{Root: root, Source: app.Source{Path: path}, AppName: "a"}
			_, err := newRenderer(render.Options{}).Render(context.Background(), render.CacheKey("t", in), in)
			if !errors.Is(err, render.ErrOutsideRoot) {
				t.Fatalf("got %v, want render.ErrOutsideRoot", err)
			}
		})
	}
}
