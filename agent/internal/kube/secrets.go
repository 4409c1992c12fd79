// Package kube holds the agent's typed access to its own core objects: the
// Secrets that keep its identity and its persisted bundles, and its
// Namespace. It goes through the dynamic client and converts to the
// k8s.io/api types, so that the agent does not link client-go's typed
// clientset (whose scheme registers every built-in API group and costs
// megabytes of resident memory in every cluster).
package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var (
	secretsGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// Secrets reads and writes the Secrets of one namespace.
type Secrets struct {
	res dynamic.ResourceInterface
}

// NewSecrets returns the Secrets of namespace.
func NewSecrets(dyn dynamic.Interface, namespace string) Secrets {
	return Secrets{res: dyn.Resource(secretsGVR).Namespace(namespace)}
}

// Get returns the Secret name. The error is the API server's (test it with
// apierrors.IsNotFound).
func (s Secrets) Get(ctx context.Context, name string) (*corev1.Secret, error) {
	u, err := s.res.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return toSecret(u)
}

// List returns the Secrets matching labelSelector.
func (s Secrets) List(ctx context.Context, labelSelector string) ([]*corev1.Secret, error) {
	list, err := s.res.List(ctx, metav1.ListOptions{LabelSelector: labelSelector})
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.Secret, 0, len(list.Items))
	for i := range list.Items {
		sec, err := toSecret(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// Create creates sec.
func (s Secrets) Create(ctx context.Context, sec *corev1.Secret, fieldManager string) error {
	u, err := fromSecret(sec)
	if err != nil {
		return err
	}
	_, err = s.res.Create(ctx, u, metav1.CreateOptions{FieldManager: fieldManager})
	return err
}

// Update replaces sec (its resourceVersion guards against a lost update).
func (s Secrets) Update(ctx context.Context, sec *corev1.Secret, fieldManager string) error {
	u, err := fromSecret(sec)
	if err != nil {
		return err
	}
	_, err = s.res.Update(ctx, u, metav1.UpdateOptions{FieldManager: fieldManager})
	return err
}

// Apply server-side applies the fields set in sec (name, labels, type and
// data are what callers set), taking them over from other managers.
func (s Secrets) Apply(ctx context.Context, sec *corev1.Secret, fieldManager string) error {
	u, err := fromSecret(sec)
	if err != nil {
		return err
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	_, err = s.res.Apply(ctx, sec.Name, u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}

// Delete deletes the Secret name.
func (s Secrets) Delete(ctx context.Context, name string) error {
	return s.res.Delete(ctx, name, metav1.DeleteOptions{})
}

func toSecret(u *unstructured.Unstructured) (*corev1.Secret, error) {
	var sec corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &sec); err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &sec, nil
}

func fromSecret(sec *corev1.Secret) (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(sec)
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("v1")
	u.SetKind("Secret")
	return u, nil
}

// GetNamespace returns the namespace name. The error is the API server's
// (test it with apierrors.IsNotFound).
func GetNamespace(ctx context.Context, dyn dynamic.Interface, name string) (*corev1.Namespace, error) {
	u, err := dyn.Resource(namespacesGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var ns corev1.Namespace
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ns); err != nil {
		return nil, fmt.Errorf("Namespace %s: %w", name, err)
	}
	return &ns, nil
}

// CreateNamespace creates the namespace name.
func CreateNamespace(ctx context.Context, dyn dynamic.Interface, name, fieldManager string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(name)
	_, err := dyn.Resource(namespacesGVR).Create(ctx, u, metav1.CreateOptions{FieldManager: fieldManager})
	return err
}
