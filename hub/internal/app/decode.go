package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// ErrInvalid is wrapped by every error about an invalid definition.
var ErrInvalid = errors.New("invalid definition")

// document is one YAML document of a file.
type document struct {
	file  string
	index int // 1-based, counting documents with content
	line  int // 1-based line where the document starts
	raw   []byte
}

// where names the document in messages.
func (d document) where() string {
	return fmt.Sprintf("%s: document %d (line %d)", d.file, d.index, d.line)
}

// splitDocuments splits a YAML stream at lines starting with "---", keeping
// track of where each document starts. Documents holding only comments and
// whitespace are dropped and not counted.
func splitDocuments(file string, data []byte) []document {
	var docs []document
	var cur bytes.Buffer
	start, line := 1, 0
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, document{file: file, index: len(docs) + 1, line: start, raw: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
	}
	for rest := data; len(rest) > 0; {
		line++
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if isSeparator(l) {
			flush()
			start = line + 1
			continue
		}
		if cur.Len() == 0 && !hasContent(l) {
			start = line + 1
		}
		cur.Write(l)
	}
	flush()
	return docs
}

func isSeparator(l []byte) bool {
	l = bytes.TrimRight(l, "\r\n")
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	rest := l[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t'
}

func hasContent(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// header is what every document has.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
}

// Decode reads the definitions in one file: a YAML stream (or JSON) of
// flotilla.dev/v1alpha1 Application, Cluster and Project, and
// argoproj.io/v1alpha1 Application, ApplicationSet and AppProject (converted
// to a Project). Any other kind is an error naming the file and document.
// Applications are validated (see Validate); ApplicationSets are checked
// and returned unexpanded.
//
// Each document stands or falls alone: one that cannot be used is listed
// in Broken (by kind and name when they can be read) and the others are
// returned; the error joins those of the broken documents.
func Decode(file string, data []byte) (Definitions, error) {
	var defs Definitions
	for _, doc := range splitDocuments(file, data) {
		var h header
		err := decodeOne(&defs, doc, &h)
		if err != nil {
			defs.Broken = append(defs.Broken, newBroken(h.Kind, h.Metadata.Name, doc.file, err))
		}
	}
	return defs, defs.Err()
}

// decodeOne decodes one document into defs; h gets its header as far as it
// could be read.
func decodeOne(defs *Definitions, doc document, h *header) error {
	// Leading newlines make YAML errors report lines of the file.
	js, err := yaml.YAMLToJSON(append(bytes.Repeat([]byte("\n"), doc.line-1), doc.raw...))
	if err != nil {
		return fmt.Errorf("%s: %w", doc.where(), invalidf("%v", err))
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return fmt.Errorf("%s: %w", doc.where(), invalidf("not an object: %v", err))
	}
	if err := json.Unmarshal(js, h); err != nil {
		return fmt.Errorf("%s: %w", doc.where(), invalidf("%v", fieldError(err)))
	}
	return decodeDocument(defs, doc, *h, js, m)
}

func decodeDocument(defs *Definitions, doc document, h header, js []byte, m map[string]any) error {
	what := fmt.Sprintf("%s %s", h.Kind, h.Metadata.Name)
	if h.Metadata.Name == "" {
		return fmt.Errorf("%s: %s: %w", doc.where(), h.Kind, invalidf("metadata.name is missing"))
	}
	switch {
	case h.APIVersion == APIVersion && h.Kind == KindApp:
		var obj struct {
			Spec Spec `json:"spec"`
		}
		if err := decodeStrict(js, m, &obj, []string{"apiVersion", "kind", "metadata", "spec"}); err != nil {
			return fmt.Errorf("%s: %s: %w", doc.file, what, err)
		}
		a := &Application{Name: h.Metadata.Name, Spec: obj.Spec, File: doc.file}
		if err := Validate(a); err != nil {
			return err
		}
		defs.Apps = append(defs.Apps, a)
	case h.APIVersion == APIVersion && h.Kind == KindCluster:
		var obj struct {
			Spec struct {
				Labels map[string]string `json:"labels,omitempty"`
			} `json:"spec"`
		}
		if err := decodeStrict(js, m, &obj, []string{"apiVersion", "kind", "metadata", "spec"}); err != nil {
			return fmt.Errorf("%s: %s: %w", doc.file, what, err)
		}
		c := ClusterDecl{Name: h.Metadata.Name, File: doc.file, Labels: map[string]string{}}
		for k, v := range h.Metadata.Labels {
			c.Labels[k] = v
		}
		for k, v := range obj.Spec.Labels {
			c.Labels[k] = v
		}
		if err := validateCluster(c); err != nil {
			return fmt.Errorf("%s: %s: %w", doc.file, what, err)
		}
		defs.Clusters = append(defs.Clusters, c)
	case h.APIVersion == ArgoAPIVersion && h.Kind == KindApp:
		a, warns, err := convertArgoApp(doc.file, m)
		defs.Warnings = append(defs.Warnings, warns...)
		if err != nil {
			return err
		}
		if a == nil { // skipped with a warning
			return nil
		}
		if err := Validate(a); err != nil {
			return err
		}
		defs.Apps = append(defs.Apps, a)
	case h.APIVersion == ArgoAPIVersion && h.Kind == KindAppSet:
		s, warns, err := decodeAppSet(doc.file, h.Metadata.Name, m)
		defs.Warnings = append(defs.Warnings, warns...)
		if err != nil {
			return err
		}
		defs.AppSets = append(defs.AppSets, s)
	case h.APIVersion == APIVersion && h.Kind == KindProject:
		var obj struct {
			Spec ProjectSpec `json:"spec"`
		}
		if err := decodeStrict(js, m, &obj, []string{"apiVersion", "kind", "metadata", "spec"}); err != nil {
			return fmt.Errorf("%s: %s: %w", doc.file, what, err)
		}
		p := &Project{Name: h.Metadata.Name, Spec: obj.Spec, File: doc.file}
		if err := ValidateProject(p); err != nil {
			return err
		}
		defs.Projects = append(defs.Projects, p)
	case h.APIVersion == ArgoAPIVersion && h.Kind == KindAppProject:
		p, warns, err := convertArgoProject(doc.file, m)
		defs.Warnings = append(defs.Warnings, warns...)
		if err != nil {
			return err
		}
		defs.Projects = append(defs.Projects, p)
	case strings.HasPrefix(h.APIVersion, Group+"/") || strings.HasPrefix(h.APIVersion, "argoproj.io/"):
		return fmt.Errorf("%s: %w", doc.where(), invalidf("unknown kind %s %s (known: %s Application, Cluster, Project; %s Application, ApplicationSet, AppProject)", h.APIVersion, h.Kind, APIVersion, ArgoAPIVersion))
	default:
		return fmt.Errorf("%s: %w", doc.where(), invalidf("unknown kind %q apiVersion %q (name %q); a definitions folder holds only Application, ApplicationSet, Cluster, Project and AppProject", h.Kind, h.APIVersion, h.Metadata.Name))
	}
	return nil
}

// decodeStrict decodes js into out and refuses fields out does not have,
// naming each by its path. top lists the allowed top-level fields besides
// those of out.
func decodeStrict(js []byte, m map[string]any, out any, top []string) error {
	if err := json.Unmarshal(js, out); err != nil {
		return invalidf("%v", fieldError(err))
	}
	var unknown []string
	for k, v := range m {
		switch {
		case k == "spec":
			unknown = append(unknown, unknownFields(v, specTypeOf(out), "spec")...)
		case k == "status":
			// written by controllers; never desired state
		case !slices.Contains(top, k):
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return invalidf("unknown field %s", strings.Join(unknown, ", "))
	}
	return nil
}

// fieldError makes JSON decoding errors name the field path.
func fieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("%s: cannot use a %s as %s", te.Field, te.Value, te.Type)
	}
	return err
}

// invalidError is an ErrInvalid whose message is only the problem, so that
// messages read "<file>: <object>: <field>: <problem>".
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}
