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

// NeedsCapabilities is the package's NeedsCapabilities (the controller
// asks it of its renderer).
func (r *Renderer) NeedsCapabilities(root string, src app.Source) bool {
	return NeedsCapabilities(root, src)
}

// KustomizeCharts is the package's KustomizeCharts.
func (r *Renderer) KustomizeCharts(root string, src app.Source) ([]KustomizeChart, bool, error) {
	return KustomizeCharts(root, src)
}

// KustomizeRemoteBases is the package's KustomizeRemoteBases.
func (r *Renderer) KustomizeRemoteBases(root string, src app.Source, lookup func(RemoteBase) (string, error)) ([]RemoteBase, error) {
	return KustomizeRemoteBases(root, src, lookup)
}
