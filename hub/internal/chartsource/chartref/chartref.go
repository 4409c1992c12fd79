// Package chartref is what a resolved Helm chart is called between the
// chart source (package chartsource, which links Helm's repository and
// registry clients) and the code that uses its charts without fetching
// them (the controller): the reference, its text form and the chart
// folder inside a fetched chart. It uses the standard library only.
package chartref

import (
	"fmt"
	"os"
	"strings"
)

// Ref is a resolved chart: its exact version and the sha256 digest of its
// archive ("sha256:<hex>").
type Ref struct {
	Version string
	Digest  string
}

// String is the form the controller keeps as the source's "commit":
// "<version>@<digest>".
func (r Ref) String() string { return r.Version + "@" + r.Digest }

// Parse reverses Ref.String.
func Parse(s string) (Ref, error) {
	v, d, ok := strings.Cut(s, "@")
	if !ok || v == "" || !strings.HasPrefix(d, "sha256:") {
		return Ref{}, fmt.Errorf("chart reference %q: want <version>@sha256:<digest>", s)
	}
	return Ref{Version: v, Digest: d}, nil
}

// ChartDir returns the name of the chart folder inside an expanded chart
// directory.
func ChartDir(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != "" && e.Name()[0] != '.' {
			return e.Name(), nil
		}
	}
	return "", os.ErrNotExist
}
