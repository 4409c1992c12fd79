package controller

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/render"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// maxScopeErrors bounds the objects one scope error names.
const maxScopeErrors = 10

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
	var errs []error
	refused := 0
	for _, o := range objs {
		gk := o.GroupVersionKind().GroupKind()
		namespaced := !manifest.BuiltinClusterScoped(gk) && !crds[gk]
		k := render.KeyIn(o, ns)
		if !namespaced {
			k.Namespace = ""
		}
		if err := manifest.CheckScope(k, namespaced, ns, s); err != nil {
			refused++
			if len(errs) < maxScopeErrors {
				errs = append(errs, err)
			}
		}
	}
	if refused > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more objects %w", refused-len(errs), manifest.ErrOutOfScope))
	}
	return errors.Join(errs...)
}
