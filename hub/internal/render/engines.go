package render

import (
	"context"
	"errors"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// ErrNoEngine is wrapped by errors about a source the Renderer has no
// engine for (a Helm chart, a kustomization or a Jsonnet file rendered
// without Options.Engines).
var ErrNoEngine = errors.New("no engine to render it in this program")

// Engines render what is not plain YAML or JSON: Helm charts,
// kustomizations and Jsonnet files. Package render/engines implements
// them; they live apart so that what renders only plain YAML (the unit
// tests of the API and the CLI) links neither Helm nor Kustomize.
type Engines interface {
	// Helm renders the chart in dir (a real folder relative to root).
	Helm(ctx context.Context, root *Root, dir string, in Input) ([]Origined, error)
	// Kustomize builds the kustomization in dir.
	Kustomize(ctx context.Context, root *Root, dir string, in Input) ([]Origined, error)
	// Jsonnet evaluates the Jsonnet file (relative to root) to JSON: one
	// object or an array of them.
	Jsonnet(root *Root, file string, j *app.Jsonnet) ([]byte, error)
	// KustomizeCharts returns the charts the kustomization of src, checked
	// out at root, pulls from repositories, and whether it (or a local
	// kustomization it refers to) has helmCharts at all.
	KustomizeCharts(root string, src app.Source) ([]KustomizeChart, bool, error)
	// KustomizeRemoteBases returns the remote bases the kustomization of
	// src is built from, calling lookup for each.
	KustomizeRemoteBases(root string, src app.Source, lookup func(RemoteBase) (string, error)) ([]RemoteBase, error)
}
