package diff

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// volatileMetadata lists metadata fields the server owns; they never count.
var volatileMetadata = []string{
	"resourceVersion", "uid", "generation", "creationTimestamp", "managedFields",
	"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
}

// Normalize returns a deep copy of obj without status and the server-owned
// metadata fields. A nil obj gives nil.
func Normalize(obj *unstructured.Unstructured) map[string]any {
	if obj == nil {
		return nil
	}
	out := runtime.DeepCopyJSON(obj.Object)
	delete(out, "status")
	if md, ok := out["metadata"].(map[string]any); ok {
		for _, f := range volatileMetadata {
			delete(md, f)
		}
		for _, f := range []string{"annotations", "labels"} {
			if m, ok := md[f].(map[string]any); ok && len(m) == 0 {
				delete(md, f)
			}
		}
	}
	return out
}

// Fingerprint hashes the normalised form of obj. Two objects with the same
// fingerprint agree on everything drift detection looks at.
func Fingerprint(obj *unstructured.Unstructured) string {
	if obj == nil {
		return ""
	}
	b, err := json.Marshal(Normalize(obj)) // encoding/json sorts map keys
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// Hash hashes an object exactly as given (for desired objects, to notice a
// changed bundle entry).
func Hash(obj *unstructured.Unstructured) string {
	b, err := json.Marshal(obj.Object)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}
