package app

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// templateFuncs are Sprig's functions as Argo CD offers them: without
// access to the environment or the network.
var templateFuncs = func() template.FuncMap {
	f := sprig.TxtFuncMap()
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(f, name)
	}
	return f
}()

// render renders every string in the template with params.
func (s *AppSet) render(params map[string]any) (map[string]any, error) {
	out, err := s.renderValue(deepCopy(s.Template), params, "")
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	return m, nil
}

func (s *AppSet) renderValue(v any, params map[string]any, path string) (any, error) {
	switch x := v.(type) {
	case string:
		r, err := s.renderString(x, params)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.TrimPrefix(path, "."), err)
		}
		return r, nil
	case map[string]any:
		for k, item := range x {
			r, err := s.renderValue(item, params, path+"."+k)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	case []any:
		for i, item := range x {
			r, err := s.renderValue(item, params, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
		return x, nil
	}
	return v, nil
}

func (s *AppSet) renderString(text string, params map[string]any) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	if !s.GoTemplate {
		return substitute(text, params), nil
	}
	t := template.New("").Funcs(templateFuncs)
	if len(s.GoTemplateOptions) > 0 {
		t = t.Option(s.GoTemplateOptions...)
	}
	t, err := t.Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, params); err != nil {
		return "", err
	}
	return b.String(), nil
}

// substitute is Argo CD's default templating: "{{ key }}" becomes the
// parameter's value; unknown keys stay as they are.
func substitute(text string, params map[string]any) string {
	var b strings.Builder
	for {
		i := strings.Index(text, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(text[i+2:], "}}")
		if j < 0 {
			break
		}
		tag := text[i+2 : i+2+j]
		b.WriteString(text[:i])
		if v, ok := params[strings.TrimSpace(tag)]; ok && strings.TrimSpace(tag) != "" {
			b.WriteString(scalarString(v))
		} else {
			b.WriteString("{{" + tag + "}}")
		}
		text = text[i+2+j+2:]
	}
	b.WriteString(text)
	return b.String()
}

// deepCopy copies decoded JSON.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, item := range x {
			m[k] = deepCopy(item)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, item := range x {
			s[i] = deepCopy(item)
		}
		return s
	}
	return v
}
