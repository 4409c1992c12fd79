package render

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// The types a render reads live in package renderspec, which the
// controller uses without linking Helm and Kustomize; these are their
// names here.
type (
	Input          = renderspec.Input
	Capabilities   = renderspec.Capabilities
	KustomizeHelm  = renderspec.KustomizeHelm
	KustomizeChart = renderspec.KustomizeChart
	RemoteBases    = renderspec.RemoteBases
	RemoteCheckout = renderspec.RemoteCheckout
	RemoteBase     = renderspec.RemoteBase
	AppObjects     = renderspec.AppObjects
)

var (
	// ErrRemoteBase is renderspec.ErrRemoteBase.
	ErrRemoteBase = renderspec.ErrRemoteBase
	// ErrConflict is renderspec.ErrConflict.
	ErrConflict = renderspec.ErrConflict
)

// NewCapabilities is renderspec.NewCapabilities.
func NewCapabilities(kubeVersion string, apiVersions []string) (*Capabilities, error) {
	return renderspec.NewCapabilities(kubeVersion, apiVersions)
}

// CacheKey is renderspec.CacheKey.
func CacheKey(treeID string, in Input) string { return renderspec.CacheKey(treeID, in) }

// KeyIn is renderspec.KeyIn.
func KeyIn(obj *unstructured.Unstructured, ns string) manifest.Key { return renderspec.KeyIn(obj, ns) }

// CheckConflicts is renderspec.CheckConflicts.
func CheckConflicts(apps map[string]AppObjects) error { return renderspec.CheckConflicts(apps) }

// NeedsCapabilities reports whether src, checked out at root, is rendered
// with the cluster's capabilities: a Helm chart, or a kustomization with
// helmCharts. Plain directories and other kustomizations render the same
// for every cluster.
func (r *Renderer) NeedsCapabilities(root string, src app.Source) bool {
	rt, err := OpenRoot(root)
	if err != nil {
		return false // the render reports the error
	}
	defer rt.Close()
	dir, err := rt.Dir(src.Path)
	if err != nil {
		return false
	}
	switch Detect(rt, dir, src) {
	case KindHelm:
		return true
	case KindKustomize:
		if r.opts.Engines == nil {
			return false // the render reports ErrNoEngine
		}
		_, inflates, _ := r.opts.Engines.KustomizeCharts(root, src)
		return inflates // helmCharts render as Helm charts do
	}
	return false
}

// KustomizeCharts returns the charts the kustomization of src pulls from
// repositories and whether it has helmCharts (Engines.KustomizeCharts;
// none without engines).
func (r *Renderer) KustomizeCharts(root string, src app.Source) ([]KustomizeChart, bool, error) {
	if r.opts.Engines == nil {
		return nil, false, nil
	}
	return r.opts.Engines.KustomizeCharts(root, src)
}

// KustomizeRemoteBases returns the remote bases the kustomization of src
// is built from (Engines.KustomizeRemoteBases; none without engines).
func (r *Renderer) KustomizeRemoteBases(root string, src app.Source, lookup func(RemoteBase) (string, error)) ([]RemoteBase, error) {
	if r.opts.Engines == nil {
		return nil, nil
	}
	return r.opts.Engines.KustomizeRemoteBases(root, src, lookup)
}
