package manifest

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// ErrOutOfScope is wrapped when an object lies outside its app's scope: in
// a namespace the app may not use, or cluster-scoped when the app may not
// create cluster-scoped objects.
var ErrOutOfScope = errors.New("outside the app's scope")

// How an Argo CD Application (which has no scope field) widens its scope:
// annotations on the Application itself.
const (
	// ScopeNamespacesAnnotation lists further namespaces the app may use,
	// comma separated, as globs ("monitoring,team-a-*", "*" for any).
	ScopeNamespacesAnnotation = "flotilla.dev/scope-namespaces"
	// ScopeClusterAnnotation set to "true" lets the app create
	// cluster-scoped objects.
	ScopeClusterAnnotation = "flotilla.dev/scope-cluster-scoped"
)

var namespaceGK = schema.GroupKind{Kind: "Namespace"}

// builtinClusterScoped are the built-in kinds without a namespace.
var builtinClusterScoped = map[schema.GroupKind]bool{}

func init() {
	for _, gk := range []string{
		"Namespace", "Node", "PersistentVolume", "ComponentStatus",
		"ClusterRole.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io",
		"CustomResourceDefinition.apiextensions.k8s.io", "APIService.apiregistration.k8s.io",
		"MutatingWebhookConfiguration.admissionregistration.k8s.io", "ValidatingWebhookConfiguration.admissionregistration.k8s.io",
		"ValidatingAdmissionPolicy.admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io",
		"MutatingAdmissionPolicy.admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding.admissionregistration.k8s.io",
		"StorageClass.storage.k8s.io", "CSIDriver.storage.k8s.io", "CSINode.storage.k8s.io", "VolumeAttachment.storage.k8s.io",
		"VolumeAttributesClass.storage.k8s.io", "PriorityClass.scheduling.k8s.io", "RuntimeClass.node.k8s.io",
		"IngressClass.networking.k8s.io", "IPAddress.networking.k8s.io", "ServiceCIDR.networking.k8s.io",
		"CertificateSigningRequest.certificates.k8s.io", "ClusterTrustBundle.certificates.k8s.io",
		"FlowSchema.flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration.flowcontrol.apiserver.k8s.io",
		"DeviceClass.resource.k8s.io",
	} {
		builtinClusterScoped[schema.ParseGroupKind(gk)] = true
	}
}

// BuiltinClusterScoped reports whether gk is a built-in Kubernetes kind
// without a namespace. Custom kinds are not known here.
func BuiltinClusterScoped(gk schema.GroupKind) bool { return builtinClusterScoped[gk] }

// ClusterScopedCRDKinds returns the kinds that CustomResourceDefinitions
// among objs define with scope Cluster.
func ClusterScopedCRDKinds(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if gvk.Group != "apiextensions.k8s.io" || gvk.Kind != "CustomResourceDefinition" {
			continue
		}
		s, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		if s != "Cluster" {
			continue
		}
		g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		out[schema.GroupKind{Group: g, Kind: k}] = true
	}
	return out
}

// CheckScope checks one object against its app's scope s (nil: no scope,
// everything allowed). k is the object's key as it will be applied (a
// namespaced object without a namespace already carries namespace, the
// destination); namespaced says whether its kind has a namespace. The
// error names the object and says how the app can allow it.
func CheckScope(k Key, namespaced bool, namespace string, s *apiv1alpha1.Scope) error {
	if s == nil {
		return nil
	}
	gk := schema.GroupKind{Group: k.Group, Kind: k.Kind}
	switch {
	case gk == namespaceGK:
		if k.Name == namespace || NamespaceAllowed(k.Name, s.GetNamespaces()) || s.GetClusterScoped() {
			return nil
		}
		return fmt.Errorf("%s: %w: the app may create only its destination namespace %q%s; %s", k, ErrOutOfScope, namespace, listed(s), scopeHint)
	case !namespaced:
		if s.GetClusterScoped() {
			return nil
		}
		return fmt.Errorf("%s: %w: it is cluster-scoped, and the app may not create cluster-scoped objects; allow them with spec.scope.clusterScoped: true (an Argo CD Application: annotation %s: \"true\")", k, ErrOutOfScope, ScopeClusterAnnotation)
	case k.Namespace == "" || k.Namespace == namespace || NamespaceAllowed(k.Namespace, s.GetNamespaces()):
		return nil
	}
	return fmt.Errorf("%s: %w: namespace %s is not the app's destination namespace %q%s; %s", k, ErrOutOfScope, k.Namespace, namespace, listed(s), scopeHint)
}

const scopeHint = "allow it with spec.scope.namespaces (an Argo CD Application: annotation " + ScopeNamespacesAnnotation + ")"

func listed(s *apiv1alpha1.Scope) string {
	if len(s.GetNamespaces()) == 0 {
		return ""
	}
	return " nor matched by " + strings.Join(s.GetNamespaces(), ", ")
}

// NamespaceAllowed reports whether ns matches one of patterns (shell
// globs as path.Match reads them; "*" matches every namespace).
func NamespaceAllowed(ns string, patterns []string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, ns); err == nil && ok {
			return true
		}
	}
	return false
}

// ValidNamespacePattern reports a malformed namespace glob.
func ValidNamespacePattern(p string) error {
	if p == "" {
		return errors.New("empty namespace pattern")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("namespace pattern %q: %w", p, err)
	}
	return nil
}

// maxScopeErrors bounds the objects one scope error names.
const maxScopeErrors = 10

// ScopeErrors collects the refusals of CheckScope over a bundle: Err names
// the first ten objects and counts the rest.
type ScopeErrors struct {
	errs    []error
	refused int
}

// Add records err (nil is ignored).
func (s *ScopeErrors) Add(err error) {
	if err == nil {
		return
	}
	s.refused++
	if len(s.errs) < maxScopeErrors {
		s.errs = append(s.errs, err)
	}
}

// Err joins the recorded refusals; nil when there were none.
func (s *ScopeErrors) Err() error {
	errs := s.errs
	if s.refused > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more objects %w", s.refused-len(errs), ErrOutOfScope))
	}
	return errors.Join(errs...)
}
