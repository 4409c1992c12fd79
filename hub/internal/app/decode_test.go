package app

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testClusters are the clusters ApplicationSets are expanded for.
var testClusters = []Cluster{
	{Name: "staging-1", Labels: map[string]string{"env": "staging", "region": "eu"}},
	{Name: "prod-us-1", Labels: map[string]string{"env": "prod", "region": "us"}},
	{Name: "prod-eu-1", Labels: map[string]string{"env": "prod", "region": "eu"}},
}

// golden compares got with testdata/<name>, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
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

// TestDecodeGolden decodes each testdata/decode/*.yaml, expands its
// ApplicationSets for testClusters, and compares the result (or the error)
// with the .golden file beside it.
func TestDecodeGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/decode/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Error       string                    `json:"error,omitempty"`
				Definitions *Definitions              `json:"definitions,omitempty"`
				Expanded    map[string][]*Application `json:"expanded,omitempty"`
			}
			defs, err := Decode("apps/"+filepath.Base(f), data)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				out.Error = err.Error()
			} else {
				out.Definitions = &defs
				for _, s := range defs.AppSets {
					apps, err := s.Expand(testClusters)
					if err != nil {
						t.Fatalf("expand %s: %v", s.Name, err)
					}
					if out.Expanded == nil {
						out.Expanded = map[string][]*Application{}
					}
					out.Expanded[s.Name] = apps
				}
			}
			if strings.HasPrefix(name, "err-") != (out.Error != "") {
				t.Errorf("err- files must fail, others must not; got error %q", out.Error)
			}
			got, err := yaml.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "decode/"+name+".golden", got)
		})
	}
}
