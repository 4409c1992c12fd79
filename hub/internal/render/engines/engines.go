package engines

import (
	"context"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
)

// New returns the engines: Helm, Kustomize and Jsonnet, for
// render.Options.Engines and render.ServeWorker.
func New() render.Engines { return engines{} }

type engines struct{}

func (engines) Helm(ctx context.Context, root *render.Root, dir string, in render.Input) ([]render.Origined, error) {
	return renderHelm(ctx, root, dir, in)
}

func (engines) Kustomize(ctx context.Context, root *render.Root, dir string, in render.Input) ([]render.Origined, error) {
	return renderKustomize(ctx, root, dir, in)
}

func (engines) Jsonnet(root *render.Root, file string, j *app.Jsonnet) ([]byte, error) {
	return evalJsonnet(root, file, j)
}

func (engines) KustomizeCharts(root string, src app.Source) ([]render.KustomizeChart, bool, error) {
	return KustomizeCharts(root, src)
}

func (engines) KustomizeRemoteBases(root string, src app.Source, lookup func(render.RemoteBase) (string, error)) ([]render.RemoteBase, error) {
	return KustomizeRemoteBases(root, src, lookup)
}
