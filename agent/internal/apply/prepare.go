package apply

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ManagedLabel is set on every object the agent applies; the agent watches
// only objects carrying it. Ownership is decided by the tracking annotation,
// never by this label alone.
const ManagedLabel = "flotilla.dev/managed"

// ManagedSelector selects the objects carrying ManagedLabel.
const ManagedSelector = ManagedLabel + "=true"

// Prepare returns a copy of obj marked as owned by app: the tracking
// annotation and the managed label. obj must already carry its final
// namespace (see Plan).
func Prepare(app string, obj *unstructured.Unstructured) *unstructured.Unstructured {
	out := obj.DeepCopy()
	unstructured.RemoveNestedField(out.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(out.Object, "metadata", "uid")
	unstructured.RemoveNestedField(out.Object, "metadata", "managedFields")
	if ts, ok, _ := unstructured.NestedFieldNoCopy(out.Object, "metadata", "creationTimestamp"); ok && ts == nil {
		unstructured.RemoveNestedField(out.Object, "metadata", "creationTimestamp")
	}
	ann := out.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[manifest.TrackingAnnotation] = manifest.TrackingID(app, manifest.KeyOf(out))
	out.SetAnnotations(ann)
	lbl := out.GetLabels()
	if lbl == nil {
		lbl = map[string]string{}
	}
	lbl[ManagedLabel] = "true"
	out.SetLabels(lbl)
	return out
}

// OwnedBy reports whether live carries app's tracking id for its own key.
func OwnedBy(app string, live *unstructured.Unstructured) bool {
	return live.GetAnnotations()[manifest.TrackingAnnotation] == manifest.TrackingID(app, manifest.KeyOf(live))
}
