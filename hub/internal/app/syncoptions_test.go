package app

import (
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
