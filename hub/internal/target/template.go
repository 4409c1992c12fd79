package target

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/template"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// maxTemplates bounds the cache of parsed templates.
const maxTemplates = 4096

// templates caches parsed templates by their text: definitions repeat the
// same few texts for every cluster. It is emptied when full.
var templates = struct {
	sync.Mutex
	m map[string]*template.Template
}{m: map[string]*template.Template{}}

// templater templates the fields of a source, keeping the first error.
type templater struct {
	data map[string]any
	err  error
}

func (t *templater) str(field string, s *string) {
	if t.err != nil || !strings.Contains(*s, "{{") {
		return
	}
	out, err := execute(*s, t.data)
	if err != nil {
		t.err = fmt.Errorf("%s: %w", field, templateError{err})
		return
	}
	*s = out
}

func (t *templater) source(f string, s *app.Source) {
	t.str(f+".path", &s.Path)
	t.str(f+".targetRevision", &s.TargetRevision)
	if h := s.Helm; h != nil {
		for i := range h.ValueFiles {
			t.str(fmt.Sprintf("%s.helm.valueFiles[%d]", f, i), &h.ValueFiles[i])
		}
		t.str(f+".helm.values", &h.Values)
		t.str(f+".helm.releaseName", &h.ReleaseName)
		t.str(f+".helm.namespace", &h.Namespace)
		t.str(f+".helm.kubeVersion", &h.KubeVersion)
		for i := range h.Parameters {
			t.str(fmt.Sprintf("%s.helm.parameters[%d].value", f, i), &h.Parameters[i].Value)
		}
		t.values(f+".helm.valuesObject", h.ValuesObject)
	}
	if k := s.Kustomize; k != nil {
		t.str(f+".kustomize.namePrefix", &k.NamePrefix)
		t.str(f+".kustomize.nameSuffix", &k.NameSuffix)
		t.str(f+".kustomize.namespace", &k.Namespace)
		for i := range k.Images {
			t.str(fmt.Sprintf("%s.kustomize.images[%d]", f, i), &k.Images[i])
		}
		for _, key := range sortedKeys(k.CommonLabels) {
			v := k.CommonLabels[key]
			t.str(f+".kustomize.commonLabels."+key, &v)
			k.CommonLabels[key] = v
		}
		for _, key := range sortedKeys(k.CommonAnnotations) {
			v := k.CommonAnnotations[key]
			t.str(f+".kustomize.commonAnnotations."+key, &v)
			k.CommonAnnotations[key] = v
		}
	}
}

// values templates the strings of a values object in place.
func (t *templater) values(f string, m map[string]any) {
	for _, k := range sortedKeys(m) {
		switch v := m[k].(type) {
		case string:
			t.str(f+"."+k, &v)
			m[k] = v
		case map[string]any:
			t.values(f+"."+k, v)
		case []any:
			for i, item := range v {
				switch x := item.(type) {
				case string:
					t.str(fmt.Sprintf("%s.%s[%d]", f, k, i), &x)
					v[i] = x
				case map[string]any:
					t.values(fmt.Sprintf("%s.%s[%d]", f, k, i), x)
				}
			}
		}
	}
}

func execute(text string, data map[string]any) (string, error) {
	templates.Lock()
	tmpl, ok := templates.m[text]
	templates.Unlock()
	if !ok {
		var err error
		tmpl, err = template.New("").Option("missingkey=error").Parse(text)
		if err != nil {
			return "", err
		}
		templates.Lock()
		if len(templates.m) >= maxTemplates {
			clear(templates.m)
		}
		templates.m[text] = tmpl
		templates.Unlock()
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// templateError is an error from text/template that also matches
// ErrTemplate.
type templateError struct{ err error }

func (e templateError) Error() string        { return e.err.Error() }
func (e templateError) Unwrap() error        { return e.err }
func (e templateError) Is(target error) bool { return target == ErrTemplate }
