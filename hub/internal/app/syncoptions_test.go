package app

import (
	"errors"
	"strings"
	"testing"
)

func TestArgoSyncOptionWarnings(t *testing.T) {
	defs, err := Decode("apps.yaml", []byte(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p}
  destination: {namespace: team-a, name: c}
  syncPolicy:
    syncOptions: [CreateNamespace=true, Validate=false, ServerSideApply=true, ServerSideApply=false, Bogus=true, PrunePropagationPolicy=orphan]
`))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(defs.Warnings, "\n")
	for _, want := range []string{"syncOptions[1]: Validate=false has no effect", "syncOptions[3]: ServerSideApply=false is not supported", `syncOptions[4]: unknown sync option "Bogus=true"`} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings do not say %q:\n%s", want, all)
		}
	}
	for _, quiet := range []string{"syncOptions[0]", "syncOptions[2]", "syncOptions[5]"} {
		if strings.Contains(all, quiet) {
			t.Errorf("warning about a supported option %s:\n%s", quiet, all)
		}
	}
}

func TestArgoDirectoryJsonnet(t *testing.T) {
	defs, err := Decode("apps.yaml", []byte(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source:
    repoURL: https://git.example/r.git
    path: p
    directory:
      jsonnet:
        extVars: [{name: env, value: prod}, {name: count, value: "3", code: true}]
        tlas: [{name: team, value: a}]
        libs: [vendor]
  destination: {namespace: team-a, name: c}
`))
	if err != nil {
		t.Fatal(err)
	}
	j := defs.Apps[0].Spec.Source.Directory.Jsonnet
	if j == nil || len(j.ExtVars) != 2 || !j.ExtVars[1].Code || len(j.TLAs) != 1 || j.Libs[0] != "vendor" {
		t.Fatalf("jsonnet settings %+v", j)
	}
	if _, err := Decode("apps.yaml", []byte(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://git.example/r.git, path: p, directory: {jsonnet: {libs: [../../etc]}}}
  destination: {namespace: team-a, name: c}
`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("a Jsonnet library outside the repository: %v, want ErrInvalid", err)
	}
}
