package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ErrInvalidObject is wrapped by every error about a malformed object.
var ErrInvalidObject = errors.New("invalid object")

// MaxDocumentBytes bounds one YAML or JSON document read by Parse.
const MaxDocumentBytes = 16 << 20

// Parse reads a multi-document YAML or JSON stream named file into objects.
// Empty documents are skipped; a List kind is flattened into its items. Every
// object must have apiVersion, kind and metadata.name; errors name the file
// and the document index (1-based).
func Parse(file string, data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReaderSize(bytes.NewReader(data), 4096))
	var out []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		if len(raw) > MaxDocumentBytes {
			return nil, fmt.Errorf("%s: document %d: %d bytes exceeds the limit of %d: %w", file, doc, len(raw), MaxDocumentBytes, ErrInvalidObject)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		objs, err := decodeDocument(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		out = append(out, objs...)
	}
}

func decodeDocument(raw []byte) ([]*unstructured.Unstructured, error) {
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidObject, err)
	}
	if len(m) == 0 { // a document of only comments
		return nil, nil
	}
	obj := &unstructured.Unstructured{Object: m}
	if obj.IsList() {
		list, err := obj.ToList()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidObject, err)
		}
		var out []*unstructured.Unstructured
		for i := range list.Items {
			item := &list.Items[i]
			if err := Validate(item); err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, item)
		}
		return out, nil
	}
	if err := Validate(obj); err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{obj}, nil
}

// Validate checks the fields every object needs: apiVersion, kind and
// metadata.name. A hook that runs in a sync phase (HookOf) may have
// metadata.generateName instead of a name, as in Argo CD; any other object
// with generateName is refused, since GitOps cannot track an object whose
// name the API server picks.
func Validate(obj *unstructured.Unstructured) error {
	switch {
	case obj.GetAPIVersion() == "":
		return fmt.Errorf("%w: field apiVersion is missing (kind %q, name %q)", ErrInvalidObject, obj.GetKind(), obj.GetName())
	case obj.GetKind() == "":
		return fmt.Errorf("%w: field kind is missing (apiVersion %q, name %q)", ErrInvalidObject, obj.GetAPIVersion(), obj.GetName())
	case obj.GetName() == "" && obj.GetGenerateName() == "":
		return fmt.Errorf("%w: field metadata.name is missing (%s)", ErrInvalidObject, obj.GetKind())
	case obj.GetName() == "":
		if h, ok := HookOf(obj); ok && len(h.Phases) > 0 {
			return nil
		}
		return fmt.Errorf("%w: %s with metadata.generateName %q is not a hook: only hooks (annotation %s) may use generateName, since GitOps cannot track an object whose name the API server picks; set metadata.name", ErrInvalidObject, obj.GetKind(), obj.GetGenerateName(), HookAnnotation)
	}
	return nil
}
