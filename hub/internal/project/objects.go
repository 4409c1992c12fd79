package project

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// maxRefused bounds the objects one error names.
const maxRefused = 10

// CheckObjects refuses the objects of a render for cluster c that the
// project does not allow: their kind (CheckKind) and, for namespaced
// objects, their namespace on c (CheckDestination; an object without a
// namespace goes to ns, the app's destination namespace). A kind is
// cluster-scoped when it is a built-in cluster-scoped kind or a
// CustomResourceDefinition of the same render says so; the agent, which
// knows every kind its cluster serves, is the last word on custom kinds.
// The error names each refused object (the first ten) and the rule.
func (p *Policy) CheckObjects(c app.Cluster, ns string, objs []*unstructured.Unstructured) error {
	if p.all {
		return nil
	}
	crds := manifest.ClusterScopedCRDKinds(objs)
	var errs []error
	refused := 0
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		namespaced := !manifest.BuiltinClusterScoped(gvk.GroupKind()) && !crds[gvk.GroupKind()]
		k := manifest.KeyOf(o)
		if !namespaced {
			k.Namespace = ""
		} else if k.Namespace == "" {
			k.Namespace = ns
		}
		err := p.CheckKind(gvk.Group, gvk.Kind, namespaced)
		if err == nil && namespaced {
			err = p.CheckDestination(c, k.Namespace)
		}
		if err == nil {
			continue
		}
		refused++
		if len(errs) < maxRefused {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	if refused > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more objects %w", refused-len(errs), ErrForbidden))
	}
	return errors.Join(errs...)
}
