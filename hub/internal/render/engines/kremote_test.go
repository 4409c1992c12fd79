//go:build !unit

package engines

import (
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// TestKustomizeRemoteRefused runs each way a kustomization can name
// something remote twice: through kustomize itself on the disk, which
// shows whether it fetches (the test's HTTP server counts the requests; a
// local git repository named by file:// shows a clone by its objects), and
// through the renderer, which must refuse it before kustomize runs, with
// an error naming the file and the field, without a request, and leaving
// no temporary folder.
func TestKustomizeRemoteRefused(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch {
		case strings.HasSuffix(r.URL.Path, ".env"):
			fmt.Fprint(w, "K=fetched\n")
		case strings.HasSuffix(r.URL.Path, ".json"):
			fmt.Fprint(w, `[{"op": "add", "path": "/data/fetched", "value": "yes"}]`)
		default:
			fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\ndata:\n  fetched: \"yes\"\n")
		}
	}))
	t.Cleanup(srv.Close)
	u := srv.URL
	clone := gitRepoWithKustomization(t)

	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n"
	cases := []struct {
		name, kustomization, field string
		extra                      map[string]string // more files
		fetches                    bool              // what kustomize itself does
	}{
		{"resources", "resources: [" + u + "/r.yaml]\n", "resources", nil, true},
		{"bases", "bases: [" + u + "/org/repo]\n", "bases", nil, true},
		{"components", "resources: [cm.yaml]\ncomponents: [" + u + "/org/repo]\n", "components", nil, true},
		{"patchesStrategicMerge", "resources: [cm.yaml]\npatchesStrategicMerge: [" + u + "/p.yaml]\n", "patchesStrategicMerge", nil, true},
		{"patches", "resources: [cm.yaml]\npatches: [{path: " + u + "/p.yaml}]\n", "patches[0].path", nil, true},
		{"patchesJson6902", "resources: [cm.yaml]\npatchesJson6902: [{path: " + u + "/p.json, target: {version: v1, kind: ConfigMap, name: base}}]\n", "patchesJson6902[0].path", nil, true},
		{"configMapGenerator.files", "configMapGenerator: [{name: g, files: [" + u + "/x]}]\n", "configMapGenerator[0].files", nil, true},
		{"configMapGenerator.files key", "configMapGenerator: [{name: g, files: [k=" + u + "/x]}]\n", "configMapGenerator[0].files", nil, true},
		{"configMapGenerator.envs", "configMapGenerator: [{name: g, envs: [" + u + "/x.env]}]\n", "configMapGenerator[0].envs", nil, true},
		{"configMapGenerator.env", "configMapGenerator: [{name: g, env: " + u + "/x.env}]\n", "configMapGenerator[0].env", nil, true},
		{"secretGenerator.files", "secretGenerator: [{name: g, files: [" + u + "/x]}]\n", "secretGenerator[0].files", nil, true},
		{"secretGenerator.envs", "secretGenerator: [{name: g, envs: [" + u + "/x.env]}]\n", "secretGenerator[0].envs", nil, true},
		{"crds", "resources: [cm.yaml]\ncrds: [" + u + "/crd.json]\n", "crds", nil, true},
		{"configurations", "resources: [cm.yaml]\nconfigurations: [" + u + "/c.yaml]\n", "configurations", nil, true},
		{"openapi", "resources: [cm.yaml]\nopenapi: {path: " + u + "/o.json}\n", "openapi.path", nil, true},
		{"replacements", "resources: [cm.yaml]\nreplacements: [{path: " + u + "/r.yaml}]\n", "replacements[0].path", nil, true},
		{"generators", "generators: [" + u + "/g.yaml]\n", "generators[0]", nil, true},
		{"transformers", "resources: [cm.yaml]\ntransformers: [" + u + "/t.yaml]\n", "transformers[0]", nil, true},
		{"transformer config file", "resources: [cm.yaml]\ntransformers: [pt.yaml]\n", "transformers[0] (PatchTransformer)",
			map[string]string{"pt.yaml": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: " + u + "/p.yaml\n"}, true},
		{"inline generator config", "generators:\n- |\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata: {name: g}\n  files: [" + u + "/x]\n", "generators[0] (ConfigMapGenerator)", nil, true},
		{"base's field", "resources: [base]\n", "configMapGenerator[0].files",
			map[string]string{"base/kustomization.yaml": "configMapGenerator: [{name: g, files: [" + u + "/x]}]\n"}, true},
		{"file:// clone", "resources: [file://" + clone + "]\n", "resources", nil, true},
		{"git:: clone", "resources: [git::file://" + clone + "]\n", "resources", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where kustomize clones
			dir := filepath.Join(t.TempDir(), "repo")
			files := map[string]string{"app/kustomization.yaml": tc.kustomization, "app/cm.yaml": cm}
			for k, v := range tc.extra {
				files["app/"+k] = v
			}
			writeFiles(t, dir, files)

			requests.Store(0)
			fetched := kustomizeOnDisk(t, filepath.Join(dir, "app")) || requests.Load() > 0
			if fetched != tc.fetches {
				t.Errorf("kustomize itself fetches: %v, want %v", fetched, tc.fetches)
			}
			clearDir(t, tmp)

			requests.Store(0)
			_, err := renderPath(t, dir, "app")
			if !errors.Is(err, render.ErrRemoteDisabled) {
				t.Fatalf("render: %v, want render.ErrRemoteDisabled", err)
			}
			for _, want := range []string{"kustomization.yaml: " + tc.field, "remote loading is disabled"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests sent", n)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary folders left behind: %v", left)
			}
		})
	}
}

// TestKustomizeGeneratorFolderRefused: a folder in generators (which
// kustomize would build, and whose configurations a patch could point
// anywhere) and a custom OpenAPI schema (kustomize keeps it for every later
// build in the process) are refused; a local configuration file that loads
// a local file renders.
func TestKustomizeGeneratorFolderRefused(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"app/kustomization.yaml":     "generators: [gen]\n",
		"app/gen/kustomization.yaml": "resources: [g.yaml]\n",
		"app/gen/g.yaml":             "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\nfiles: [x.txt]\n",
		"ok/kustomization.yaml":      "generators: [g.yaml]\n",
		"ok/g.yaml":                  "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\nfiles: [x.txt]\n",
		"ok/x.txt":                   "local\n",
	})
	if _, err := renderPath(t, dir, "app"); err == nil || !strings.Contains(err.Error(), "generators[0]") || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("generators folder: %v", err)
	}
	if out, err := renderPath(t, dir, "ok"); err != nil || !strings.Contains(out, "x.txt: |") && !strings.Contains(out, "x.txt: ") {
		t.Errorf("local generator config: %q, %v", out, err)
	}
}

func TestIsRemote(t *testing.T) {
	for ref, want := range map[string]bool{
		"http://h/x": true, "HTTPS://h/x": true, "file:///srv/repo": true, "ssh://git@h/r": true,
		"git::https://h/r": true, "GIT::file:///r": true, "git@github.com:org/repo": true,
		"github.com/org/repo": true, "GitHub.com:org/repo": true, "s3://bucket/x": true, " http://h/x": true,
		"base": false, "../base": false, "cm.yaml": false, "dir/with:colon.yaml": false,
		"gitlab.com/org/repo": false, "k=v.txt": false,
	} {
		if got := isRemote(ref); got != want {
			t.Errorf("isRemote(%q) = %v, want %v", ref, got, want)
		}
	}
}

// kustomizeOnDisk runs kustomize as the renderer configures it, but on the
// disk with no check first; it reports whether the output holds what only
// a fetch or a clone brings.
func kustomizeOnDisk(t *testing.T, dir string) bool {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	kustomizeMu.Lock()
	rm, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	openapi.ResetOpenAPI() // a schema it fetched stays for every later build
	kustomizeMu.Unlock()
	if err != nil {
		return false
	}
	y, err := rm.AsYaml()
	return err == nil && (strings.Contains(string(y), "cloned") || strings.Contains(string(y), "fetched"))
}

// gitRepoWithKustomization makes a local git repository holding a
// kustomization of one ConfigMap named cloned.
func gitRepoWithKustomization(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	writeFiles(t, dir, map[string]string{
		"kustomization.yaml": "resources: [cm.yaml]\n",
		"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cloned\n",
	})
	for _, args := range [][]string{
		{"init", "-q", "--initial-branch=main"},
		{"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "k"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	return dir
}

func clearDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
