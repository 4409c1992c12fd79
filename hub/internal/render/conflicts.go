package render

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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

// clusterScoped are built-in kinds without a namespace. Objects of other
// kinds without one are taken to land in the destination namespace.
var clusterScoped = map[string]bool{
	"/Namespace": true, "/Node": true, "/PersistentVolume": true, "/ComponentStatus": true,
	"rbac.authorization.k8s.io/ClusterRole": true, "rbac.authorization.k8s.io/ClusterRoleBinding": true,
	"apiextensions.k8s.io/CustomResourceDefinition": true, "apiregistration.k8s.io/APIService": true,
	"admissionregistration.k8s.io/MutatingWebhookConfiguration": true, "admissionregistration.k8s.io/ValidatingWebhookConfiguration": true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicy": true, "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding": true,
	"admissionregistration.k8s.io/MutatingAdmissionPolicy": true, "admissionregistration.k8s.io/MutatingAdmissionPolicyBinding": true,
	"storage.k8s.io/StorageClass": true, "storage.k8s.io/CSIDriver": true, "storage.k8s.io/CSINode": true, "storage.k8s.io/VolumeAttachment": true,
	"storage.k8s.io/VolumeAttributesClass": true, "scheduling.k8s.io/PriorityClass": true, "node.k8s.io/RuntimeClass": true,
	"networking.k8s.io/IngressClass": true, "networking.k8s.io/IPAddress": true, "networking.k8s.io/ServiceCIDR": true,
	"certificates.k8s.io/CertificateSigningRequest": true, "flowcontrol.apiserver.k8s.io/FlowSchema": true,
	"flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration": true, "resource.k8s.io/DeviceClass": true,
}

// KeyIn returns obj's key as applied with destination namespace ns.
func KeyIn(obj *unstructured.Unstructured, ns string) manifest.Key {
	k := manifest.KeyOf(obj)
	if k.Namespace == "" && !clusterScoped[k.Group+"/"+k.Kind] {
		k.Namespace = ns
	}
	return k
}

// CheckConflicts refuses two applications claiming one object on one
// cluster. apps holds, by application name, what each sends to that
// cluster. The error names both applications and the object; all conflicts
// are reported (joined), in application name order.
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
