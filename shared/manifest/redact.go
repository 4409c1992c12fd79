package manifest

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// Redacted replaces every value of a Secret's data and stringData in what
// Redact returns.
const Redacted = "REDACTED"

// LastAppliedAnnotation is kubectl's annotation holding a whole earlier
// manifest, a Secret's values included.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// Redact returns a copy of obj fit to show to people: managedFields dropped
// and, for a Secret, every value of data and stringData replaced by
// Redacted (the keys kept) and kubectl's last-applied annotation removed.
func Redact(obj *unstructured.Unstructured) *unstructured.Unstructured {
	out := obj.DeepCopy()
	unstructured.RemoveNestedField(out.Object, "metadata", "managedFields")
	if out.GroupVersionKind().Group != "" || out.GetKind() != "Secret" {
		return out
	}
	for _, field := range []string{"data", "stringData"} {
		v, present := out.Object[field]
		if !present {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			delete(out.Object, field) // whatever it is, it is not shown
			continue
		}
		red := make(map[string]any, len(m))
		for k := range m {
			red[k] = Redacted
		}
		out.Object[field] = red
	}
	if ann := out.GetAnnotations(); ann != nil {
		if _, ok := ann[LastAppliedAnnotation]; ok {
			delete(ann, LastAppliedAnnotation)
			out.SetAnnotations(ann)
		}
	}
	return out
}
