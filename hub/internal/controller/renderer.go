package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartref"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
)

// Renderer renders sources and reads what a kustomization needs before it
// renders (*render.Renderer; the hub wires it in package server). The
// controller takes it as an interface so that it, and the packages built
// on it (status, httpapi), do not link Helm and Kustomize.
type Renderer interface {
	// Render returns the objects of in, cached by key (renderspec.CacheKey).
	Render(ctx context.Context, key string, in renderspec.Input) ([]*unstructured.Unstructured, error)
	// NeedsCapabilities reports whether src, checked out at root, renders
	// with the cluster's capabilities (a Helm chart, helmCharts).
	NeedsCapabilities(root string, src app.Source) bool
	// KustomizeCharts returns the charts src's kustomization pulls from
	// repositories, and whether it has helmCharts at all.
	KustomizeCharts(root string, src app.Source) ([]renderspec.KustomizeChart, bool, error)
	// KustomizeRemoteBases returns the remote bases src's kustomization is
	// built from, calling lookup for each.
	KustomizeRemoteBases(root string, src app.Source, lookup func(renderspec.RemoteBase) (string, error)) ([]renderspec.RemoteBase, error)
}

// ChartSource resolves and fetches charts from Helm repositories
// (*chartsource.Manager, wired in package server).
type ChartSource interface {
	// Resolve returns the newest chart version matching constraint.
	Resolve(ctx context.Context, repoURL, chart, constraint string) (chartref.Ref, error)
	// Fetch returns the folder holding the chart at ref (see
	// chartref.ChartDir).
	Fetch(ctx context.Context, repoURL, chart string, ref chartref.Ref) (string, error)
}
