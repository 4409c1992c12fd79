package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// DefaultFieldManager is the server-side apply field manager.
const DefaultFieldManager = "flotilla-agent"

// Applier applies, replaces and deletes objects. It is safe for concurrent
// use.
type Applier struct {
	dyn          dynamic.Interface
	mapper       *Mapper
	fieldManager string
}

// NewApplier returns an Applier; fieldManager defaults to
// DefaultFieldManager.
func NewApplier(dyn dynamic.Interface, mapper *Mapper, fieldManager string) *Applier {
	if fieldManager == "" {
		fieldManager = DefaultFieldManager
	}
	return &Applier{dyn: dyn, mapper: mapper, fieldManager: fieldManager}
}

// Mapper returns the applier's RESTMapper.
func (a *Applier) Mapper() *Mapper { return a.mapper }

// Resource returns the client for obj's resource and its GVR.
func (a *Applier) Resource(gvk schema.GroupVersionKind, namespace string) (dynamic.ResourceInterface, schema.GroupVersionResource, error) {
	mp, err := a.mapper.Mapping(gvk)
	if err != nil {
		return nil, schema.GroupVersionResource{}, err
	}
	if mp.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(mp.Resource).Namespace(namespace), mp.Resource, nil
	}
	return a.dyn.Resource(mp.Resource), mp.Resource, nil
}

// Apply server-side applies obj with force (the agent owns what the bundle
// sets). With dryRun nothing is persisted and the result is what the object
// would become. A change to an immutable field returns *ImmutableError.
func (a *Applier) Apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	key := manifest.KeyOf(obj)
	ri, _, err := a.Resource(obj.GroupVersionKind(), obj.GetNamespace())
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", key, err)
	}
	opts := metav1.ApplyOptions{FieldManager: a.fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Apply(ctx, obj.GetName(), obj, opts)
	if err != nil {
		if f := immutableFields(err); len(f) > 0 {
			return nil, &ImmutableError{Key: key, Fields: f, Err: err}
		}
		if dryRun {
			return nil, fmt.Errorf("dry-run apply %s: %w", key, err)
		}
		return nil, fmt.Errorf("apply %s: %w", key, err)
	}
	return out, nil
}

// Replace deletes the live object, waits until it is gone (up to timeout)
// and applies obj again. It is the Replace=true / Force=true answer to an
// immutable field change.
func (a *Applier) Replace(ctx context.Context, obj *unstructured.Unstructured, timeout time.Duration) (*unstructured.Unstructured, error) {
	key := manifest.KeyOf(obj)
	if err := a.Delete(ctx, obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName(), ""); err != nil {
		return nil, fmt.Errorf("replace %s: %w", key, err)
	}
	ri, _, err := a.Resource(obj.GroupVersionKind(), obj.GetNamespace())
	if err != nil {
		return nil, fmt.Errorf("replace %s: %w", key, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return nil, fmt.Errorf("replace %s: wait for deletion: %w", key, err)
	}
	return a.Apply(ctx, obj, false)
}

// Delete deletes an object with background propagation. A missing object
// is not an error. When uid is set the delete is conditional on it, so an
// object re-created by someone else in the meantime is left alone.
func (a *Applier) Delete(ctx context.Context, gvk schema.GroupVersionKind, namespace, name, uid string) error {
	return a.DeleteWith(ctx, gvk, namespace, name, uid, metav1.DeletePropagationBackground)
}

// DeleteWith is Delete with the given propagation policy (Argo CD's
// PrunePropagationPolicy).
func (a *Applier) DeleteWith(ctx context.Context, gvk schema.GroupVersionKind, namespace, name, uid string, policy metav1.DeletionPropagation) error {
	ri, _, err := a.Resource(gvk, namespace)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil // the kind is gone, so is the object
		}
		return fmt.Errorf("delete %s %s/%s: %w", gvk.Kind, namespace, name, err)
	}
	opts := metav1.DeleteOptions{PropagationPolicy: &policy}
	if uid != "" {
		u := types.UID(uid)
		opts.Preconditions = &metav1.Preconditions{UID: &u}
	}
	err = ri.Delete(ctx, name, opts)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %s %s/%s: %w", gvk.Kind, namespace, name, err)
	}
	return nil
}

// Get reads an object from the API server; found is false when it does not
// exist.
func (a *Applier) Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (obj *unstructured.Unstructured, found bool, err error) {
	ri, _, err := a.Resource(gvk, namespace)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	obj, err = ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %s %s/%s: %w", gvk.Kind, namespace, name, err)
	}
	return obj, true, nil
}

// IsImmutable reports whether err is an *ImmutableError.
func IsImmutable(err error) bool {
	var ie *ImmutableError
	return errors.As(err, &ie)
}
