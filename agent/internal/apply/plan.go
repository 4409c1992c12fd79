package apply

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Phase orders objects within a wave.
type Phase int

// Phases in apply order.
const (
	PhaseNamespaces Phase = iota
	PhaseCRDs
	PhaseClusterScoped
	PhaseNamespaced
)

func (p Phase) String() string {
	return [...]string{"namespaces", "crds", "cluster-scoped", "namespaced"}[p]
}

// Step is a set of objects applied together (in parallel).
type Step struct {
	Phase   Phase
	Objects []*unstructured.Unstructured
}

// Wave is one sync wave: its steps in order. The next wave starts only when
// every object of this one is healthy.
type Wave struct {
	Wave  int
	Steps []Step
}

// ScopeFunc reports whether a kind is namespaced.
type ScopeFunc func(schema.GroupKind) (namespaced bool, err error)

var crdGK = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// IsCRD reports whether gk is CustomResourceDefinition.
func IsCRD(gk schema.GroupKind) bool { return gk == crdGK }

// BundleScope wraps fallback with the scopes of the CRDs among objs, so that
// custom resources defined in the same bundle plan before their CRD exists.
func BundleScope(objs []*unstructured.Unstructured, fallback ScopeFunc) ScopeFunc {
	local := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != crdGK {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		local[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
	}
	return func(gk schema.GroupKind) (bool, error) {
		if ns, ok := local[gk]; ok {
			return ns, nil
		}
		return fallback(gk)
	}
}

// MissingAsNamespaced wraps fallback so that a kind the cluster does not
// serve yet is planned as namespaced when its objects say
// SkipDryRunOnMissingResource=true (or all is set, the app-wide option):
// its CRD is expected from elsewhere, and the step that applies it finds
// out its real scope (or fails and retries until the kind is served).
func MissingAsNamespaced(objs []*unstructured.Unstructured, fallback ScopeFunc, all bool) ScopeFunc {
	skip := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if all || ObjectOptionsOf(o).SkipDryRunOnMissingResource {
			skip[o.GroupVersionKind().GroupKind()] = true
		}
	}
	return func(gk schema.GroupKind) (bool, error) {
		ns, err := fallback(gk)
		if err != nil && skip[gk] && meta.IsNoMatchError(err) {
			return true, nil
		}
		return ns, err
	}
}

// WaveOf returns the sync wave of obj (flotilla.dev/sync-wave, else
// argocd.argoproj.io/sync-wave, else helm.sh/hook-weight as Argo CD reads
// it, else 0).
func WaveOf(obj *unstructured.Unstructured) (int, error) {
	ann := obj.GetAnnotations()
	v, ok := ann[manifest.SyncWaveAnnotation]
	if !ok {
		v, ok = ann[manifest.ArgoSyncWaveAnnotation]
	}
	if !ok {
		v, ok = ann[manifest.HelmHookWeightAnnotation]
	}
	if !ok || strings.TrimSpace(v) == "" {
		return 0, nil
	}
	w, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s: sync wave %q is not an integer", manifest.KeyOf(obj), v)
	}
	return w, nil
}

// Plan orders objs into waves and steps. Namespaced objects without a
// namespace get defaultNamespace, cluster-scoped objects lose any namespace;
// Plan changes objs in place to do so. Objects keep their relative order
// within a step.
func Plan(objs []*unstructured.Unstructured, defaultNamespace string, scope ScopeFunc) ([]Wave, error) {
	byWave := map[int]*[4][]*unstructured.Unstructured{}
	for _, o := range objs {
		w, err := WaveOf(o)
		if err != nil {
			return nil, err
		}
		gk := o.GroupVersionKind().GroupKind()
		var ph Phase
		switch {
		case gk == schema.GroupKind{Kind: "Namespace"}:
			ph = PhaseNamespaces
			o.SetNamespace("")
		case gk == crdGK:
			ph = PhaseCRDs
			o.SetNamespace("")
		default:
			namespaced, err := scope(gk)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", manifest.KeyOf(o), err)
			}
			if namespaced {
				ph = PhaseNamespaced
				if o.GetNamespace() == "" {
					if defaultNamespace == "" {
						return nil, fmt.Errorf("%s: namespaced object without a namespace and no destination namespace", manifest.KeyOf(o))
					}
					o.SetNamespace(defaultNamespace)
				}
			} else {
				ph = PhaseClusterScoped
				o.SetNamespace("")
			}
		}
		b := byWave[w]
		if b == nil {
			b = &[4][]*unstructured.Unstructured{}
			byWave[w] = b
		}
		b[ph] = append(b[ph], o)
	}
	waves := make([]Wave, 0, len(byWave))
	for w, b := range byWave {
		wave := Wave{Wave: w}
		for ph, list := range b {
			if len(list) > 0 {
				wave.Steps = append(wave.Steps, Step{Phase: Phase(ph), Objects: list})
			}
		}
		waves = append(waves, wave)
	}
	sort.Slice(waves, func(i, j int) bool { return waves[i].Wave < waves[j].Wave })
	return waves, nil
}
