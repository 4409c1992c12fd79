package renderspec

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ErrConflict is wrapped by errors about two applications claiming one
// object on one cluster.
var ErrConflict = errors.New("object claimed by two applications")

// AppObjects is what one application sends to one cluster.
type AppObjects struct {
	// Namespace is the destination namespace: objects without a namespace
	// land there, except kinds known to be cluster-scoped.
	Namespace string
	Objects   []*unstructured.Unstructured
}

// KeyIn returns obj's key as applied with destination namespace ns.
func KeyIn(obj *unstructured.Unstructured, ns string) manifest.Key {
	k := manifest.KeyOf(obj)
	if k.Namespace == "" && !manifest.BuiltinClusterScoped(schema.GroupKind{Group: k.Group, Kind: k.Kind}) {
		k.Namespace = ns
	}
	return k
}

// CheckConflicts refuses two applications claiming one object on one
// cluster. apps holds, by application name, what each sends to that
// cluster. The error names both applications and the object; all conflicts
// are reported (joined), in application name order. Hooks with
// metadata.generateName claim no object: each run gets a name of its own.
func CheckConflicts(apps map[string]AppObjects) error {
	names := make([]string, 0, len(apps))
	for n := range apps {
		names = append(names, n)
	}
	slices.Sort(names)
	owner := map[manifest.Key]string{}
	var errs []error
	for _, n := range names {
		a := apps[n]
		for _, o := range a.Objects {
			if o.GetName() == "" {
				continue // a generateName hook
			}
			k := KeyIn(o, a.Namespace)
			if prev, ok := owner[k]; ok && prev != n {
				errs = append(errs, fmt.Errorf("%w: %s is in application %s and in application %s", ErrConflict, k, prev, n))
				continue
			}
			owner[k] = n
		}
	}
	return errors.Join(errs...)
}
