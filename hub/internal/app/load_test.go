package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeFiles(t *testing.T, files map[string]string) string {
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

const appTmpl = `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: NAME}
spec:
  source: {repoURL: https://git.example.com/c.git, path: NAME}
  destination: {clusters: [c1]}
`

func appDoc(name string) string { return strings.ReplaceAll(appTmpl, "NAME", name) }

func TestLoadDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b/web.yaml":      appDoc("web"),
		"a.yml":           appDoc("api") + "---\n" + appDoc("db"),
		"c/d/e.json":      `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"c1","labels":{"env":"prod"}}}`,
		"README.md":       "not yaml: [",
		".git/config.yml": "not: [yaml",
	})
	defs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range defs.Apps {
		got = append(got, a.File+":"+a.Name)
	}
	if diff := cmp.Diff([]string{"a.yml:api", "a.yml:db", "b/web.yaml:web"}, got); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	want := []ClusterDecl{{Name: "c1", Labels: map[string]string{"env": "prod"}, File: "c/d/e.json"}}
	if diff := cmp.Diff(want, defs.Clusters); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
}

func TestLoadDirDuplicate(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"team-a/web.yaml": appDoc("web"),
		"team-b/web.yaml": appDoc("web"),
	})
	defs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := defs.Err(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	want := "Application web is defined twice: in team-a/web.yaml and in team-b/web.yaml"
	if len(defs.Broken) != 1 || defs.Broken[0].Error != want || defs.Broken[0].Name != "web" {
		t.Errorf("broken %+v, want one for web saying %q", defs.Broken, want)
	}
	if len(defs.Apps) != 0 {
		t.Errorf("apps %v: neither copy of a duplicate may win", defs.Apps)
	}
}

// TestLoadDirIsolatesBrokenDefinitions: each definition stands or falls
// alone. A file holding a good Application between broken ones (an unknown
// field, a config management plugin, a mistyped kind, YAML that does not
// parse), and a good file beside it, load their good apps; every broken
// one is listed with its name where it can be read and an error naming the
// file and field.
func TestLoadDirIsolatesBrokenDefinitions(t *testing.T) {
	argo := func(name, extra string) string {
		return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: " + name + "}\nspec:\n  source: {repoURL: https://git.example/r.git, path: p" + extra + "}\n  destination: {namespace: ns, name: c}\n"
	}
	dir := writeFiles(t, map[string]string{
		"mixed.yaml": appDoc("bad-field") + "  sourcee: {}\n---\n" + argo("good-argo", "") + "---\n" + argo("plugin", ", plugin: {name: cmp}") +
			"---\napiVersion: flotilla.dev/v1alpha1\nkind: Applicaton\nmetadata: {name: typo}\n---\nkind: [unclosed\n",
		"other.yaml": appDoc("good"),
	})
	defs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range defs.Apps {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"good-argo", "good"}, names); diff != "" {
		t.Errorf("loaded apps (-want +got):\n%s", diff)
	}
	want := map[string]string{"bad-field": "sourcee", "plugin": "plugin", "typo": "Applicaton", "": "mixed.yaml"}
	if len(defs.Broken) != len(want) {
		t.Fatalf("broken %+v, want %d", defs.Broken, len(want))
	}
	for _, b := range defs.Broken {
		w, ok := want[b.Name]
		if !ok || !strings.Contains(b.Error, w) || !strings.Contains(b.Error, "mixed.yaml") || b.File != "mixed.yaml" {
			t.Errorf("broken %+v: want an entry named %q saying %q and the file", b, b.Name, w)
		}
	}
}

func TestResolve(t *testing.T) {
	defs, err := Decode("apps.yaml", []byte(appDoc("web-prod-eu-1")+`---
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: web}
spec:
  goTemplate: true
  generators: [{clusters: {}}]
  template:
    metadata: {name: 'web-{{.name}}'}
    spec:
      source: {repoURL: https://git.example.com/c.git, path: web}
      destination: {name: '{{.name}}'}
---
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: api}
spec:
  generators: [{list: {elements: [{cluster: c1}, {cluster: c2}]}}]
  template:
    metadata: {name: 'api-{{cluster}}'}
    spec:
      source: {repoURL: https://git.example.com/c.git, path: api}
      destination: {name: '{{cluster}}'}
`))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := defs.Resolve([]Cluster{{Name: "prod-eu-1"}, {Name: "c9"}})
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"api-c1", "api-c2", "web-prod-eu-1"}, names); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	want := "apps.yaml: ApplicationSet web: generated Application web-prod-eu-1 is already defined in apps.yaml"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		name, spec, want string
	}{
		{
			name: "missing key",
			spec: `goTemplate: true
  goTemplateOptions: [missingkey=error]
  generators: [{clusters: {}}]
  template:
    metadata: {name: 'x-{{.name}}'}
    spec:
      source: {repoURL: r, path: '{{.metadata.labels.tier}}'}
      destination: {name: '{{.name}}'}`,
			want: `f.yaml: ApplicationSet s: spec.generators[0] item 0: spec.template: spec.source.path: template: :1:11: executing "" at <.metadata.labels.tier>: map has no entry for key "tier"`,
		},
		{
			name: "duplicate names",
			spec: `generators: [{list: {elements: [{c: c1}, {c: c1}]}}]
  template:
    metadata: {name: 'same'}
    spec:
      source: {repoURL: r}
      destination: {name: '{{c}}'}`,
			want: `f.yaml: ApplicationSet s: Application same generated twice (generators[0] item 0 and generators[0] item 1)`,
		},
		{
			name: "invalid generated name",
			spec: `generators: [{list: {elements: [{c: Bad_Name}]}}]
  template:
    metadata: {name: '{{c}}'}
    spec:
      source: {repoURL: r}
      destination: {name: c1}`,
			want: `f.yaml: ApplicationSet s: generated Application Bad_Name: metadata.name: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		},
		{
			name: "server naming no cluster",
			spec: `generators: [{list: {elements: [{c: c1}]}}]
  template:
    metadata: {name: '{{c}}'}
    spec:
      source: {repoURL: r}
      destination: {server: 'https://10.0.0.1'}`,
			want: `f.yaml: ApplicationSet s: generated Application c1: spec.destination: server https://10.0.0.1 names no Flotilla cluster: a cluster must be named; set spec.destination.name to the cluster's name; application skipped`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: s}\nspec:\n  " + tt.spec + "\n"
			defs, err := Decode("f.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = defs.AppSets[0].Expand([]Cluster{{Name: "c1"}})
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) && tt.name != "missing key" {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	base := func() *Application {
		return &Application{Name: "web", File: "w.yaml", Spec: Spec{
			Source:      Source{RepoURL: "r", Path: "web"},
			Destination: Destination{Clusters: []string{"c1"}},
		}}
	}
	factor0 := int64(0)
	tests := []struct {
		name   string
		modify func(a *Application)
		want   string
	}{
		{"ok", func(*Application) {}, ""},
		{"two kinds", func(a *Application) {
			a.Spec.Source.Helm, a.Spec.Source.Kustomize = &Helm{}, &Kustomize{}
		}, "w.yaml: Application web: spec.source: set only one of directory, helm and kustomize"},
		{"override kind clash", func(a *Application) {
			a.Spec.Source.Helm = &Helm{}
			a.Spec.ClusterOverrides = []ClusterOverride{{Clusters: []string{"c1"}, Kustomize: &Kustomize{}}}
		}, "w.yaml: Application web: spec.clusterOverrides[0] over spec.source: set only one of directory, helm and kustomize"},
		{"override without target", func(a *Application) {
			a.Spec.ClusterOverrides = []ClusterOverride{{Path: "x"}}
		}, "w.yaml: Application web: spec.clusterOverrides[0]: no clusters and no clusterSelector"},
		{"bad glob", func(a *Application) {
			a.Spec.Source.Directory = &Directory{Include: "{a,b"}
		}, `w.yaml: Application web: spec.source.directory.include: glob "{a,b": unclosed {`},
		{"bad duration", func(a *Application) {
			a.Spec.SyncPolicy.Retry = &Retry{Backoff: &Backoff{Duration: "5 s"}}
		}, `w.yaml: Application web: spec.syncPolicy.retry.backoff.duration: time: unknown unit " s" in duration "5 s"`},
		{"bad factor", func(a *Application) {
			a.Spec.SyncPolicy.Retry = &Retry{Backoff: &Backoff{Factor: &factor0}}
		}, `w.yaml: Application web: spec.syncPolicy.retry.backoff.factor 0: must be at least 1`},
		{"bad sync option", func(a *Application) {
			a.Spec.SyncPolicy.SyncOptions = []string{"CreateNamespace"}
		}, `w.yaml: Application web: spec.syncPolicy.syncOptions[0] "CreateNamespace": expected Name=value`},
		{"bad pointer", func(a *Application) {
			a.Spec.IgnoreDifferences = []IgnoreDifference{{Kind: "Deployment", JSONPointers: []string{"spec/replicas"}}}
		}, `w.yaml: Application web: spec.ignoreDifferences[0].jsonPointers[0] "spec/replicas": a JSON pointer starts with /`},
		{"absolute path", func(a *Application) { a.Spec.Source.Path = "/etc" }, `w.yaml: Application web: spec.source.path: "/etc" is absolute; paths are relative to the repository root`},
		{"no repo", func(a *Application) { a.Spec.Source.RepoURL = "" }, `w.yaml: Application web: spec.source.repoURL is missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base()
			tt.modify(a)
			err := Validate(a)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%v does not wrap ErrInvalid", err)
				}
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCompileGlob(t *testing.T) {
	tests := []struct {
		glob  string
		match []string
		miss  []string
	}{
		{"*.yaml", []string{"a.yaml", "sub/a.yaml"}, []string{"a.yml", "a.yaml.bak"}},
		{"{config.json,env-use2/*}", []string{"config.json", "env-use2/a.yaml"}, []string{"env-use1/a.yaml", "config.yaml"}},
		{"a?c.yaml", []string{"abc.yaml"}, []string{"ac.yaml"}},
		{"[!t]*.yaml", []string{"a.yaml"}, []string{"test.yaml"}},
		{"**/crds/*", []string{"x/crds/a.yaml"}, []string{"crds.yaml"}},
		{`a\*.yaml`, []string{"a*.yaml"}, []string{"ab.yaml"}},
	}
	for _, tt := range tests {
		re, err := CompileGlob(tt.glob)
		if err != nil {
			t.Fatalf("%s: %v", tt.glob, err)
		}
		for _, m := range tt.match {
			if !re.MatchString(m) {
				t.Errorf("%s does not match %s", tt.glob, m)
			}
		}
		for _, m := range tt.miss {
			if re.MatchString(m) {
				t.Errorf("%s matches %s", tt.glob, m)
			}
		}
	}
}
