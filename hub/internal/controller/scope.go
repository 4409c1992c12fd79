package controller

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// checkScope refuses a render with objects outside the app's scope s:
// namespaced objects outside the destination namespace ns and the scope's
// namespaces, cluster-scoped objects unless the scope allows them. The hub
// knows the built-in cluster-scoped kinds and those that CRDs of the same
// render define; the agent, which knows every kind its cluster serves,
// checks again before it applies anything.
func checkScope(objs []*unstructured.Unstructured, ns string, s *apiv1alpha1.Scope) error {
	if s == nil {
		return nil
	}
	crds := manifest.ClusterScopedCRDKinds(objs)
	var refused manifest.ScopeErrors
	for _, o := range objs {
		gk := o.GroupVersionKind().GroupKind()
		namespaced := !manifest.BuiltinClusterScoped(gk) && !crds[gk]
		k := renderspec.KeyIn(o, ns)
		if !namespaced {
			k.Namespace = ""
		}
		refused.Add(manifest.CheckScope(k, namespaced, ns, s))
	}
	return refused.Err()
}
