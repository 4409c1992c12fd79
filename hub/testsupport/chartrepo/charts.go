package chartrepo

import (
	"fmt"
	"os"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
)

// Package writes the archive of a chart named name at version into dir
// (with Helm's chartutil.Save) and returns its path. The chart renders one
// ConfigMap named "<release>-<name>" whose data says the chart's version
// and the value "greeting"; deps are its Chart.yaml dependencies (not
// vendored).
func Package(t testing.TB, dir, name, version string, deps ...*chart.Dependency) string {
	t.Helper()
	cm := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-%s
data:
  chart: %s
  version: {{ .Chart.Version | quote }}
  greeting: {{ .Values.greeting | quote }}
`, name, name)
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, Type: "application", Dependencies: deps},
		Values:   map[string]any{"greeting": "hello"},
		Templates: []*chart.File{
			{Name: "templates/configmap.yaml", Data: []byte(cm)},
		},
	}
	ch.Raw = []*chart.File{{Name: "values.yaml", Data: []byte("greeting: hello\n")}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatalf("package chart %s-%s: %v", name, version, err)
	}
	return p
}
