package app

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// AppSet is an Argo CD ApplicationSet: generators that produce parameter
// sets, and an Application template rendered once per set. Expanding needs
// the cluster list, so Decode returns it unexpanded.
type AppSet struct {
	Name string `json:"name"`
	File string `json:"file"`
	// Parent names the application whose render defined this set.
	Parent string `json:"parent,omitempty"`
	// GoTemplate selects Go text/template (with Sprig functions, as Argo
	// CD) over Argo CD's default {{param}} substitution.
	GoTemplate        bool        `json:"goTemplate,omitempty"`
	GoTemplateOptions []string    `json:"goTemplateOptions,omitempty"`
	Generators        []Generator `json:"generators"`
	// Template is the Argo CD Application template (metadata and spec) as
	// decoded JSON.
	Template map[string]any `json:"template"`
}

// Generator is one generator; exactly one field is set.
type Generator struct {
	List     *ListGenerator     `json:"list,omitempty"`
	Clusters *ClustersGenerator `json:"clusters,omitempty"`
}

// ListGenerator yields one parameter set per element.
type ListGenerator struct {
	Elements []map[string]any `json:"elements"`
}

// ClustersGenerator yields one parameter set per Flotilla cluster whose
// labels match Selector (nil: every cluster): name, nameNormalized, server
// ("flotilla://<name>"), metadata.labels.<key>, metadata.annotations (empty)
// and values.<key>. Values may use the other parameters.
type ClustersGenerator struct {
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	Values   map[string]string     `json:"values,omitempty"`
}

type argoAppSetSpec struct {
	GoTemplate                   bool             `json:"goTemplate,omitempty"`
	GoTemplateOptions            []string         `json:"goTemplateOptions,omitempty"`
	Generators                   []map[string]any `json:"generators"`
	Template                     map[string]any   `json:"template"`
	TemplatePatch                any              `json:"templatePatch,omitempty"`
	SyncPolicy                   any              `json:"syncPolicy,omitempty"`
	Strategy                     any              `json:"strategy,omitempty"`
	PreservedFields              any              `json:"preservedFields,omitempty"`
	IgnoreApplicationDifferences any              `json:"ignoreApplicationDifferences,omitempty"`
	ApplyNestedSelectors         any              `json:"applyNestedSelectors,omitempty"`
}

// decodeAppSet checks an ApplicationSet and its template.
func decodeAppSet(file, name string, m map[string]any) (*AppSet, []string, error) {
	n := &notes{prefix: fmt.Sprintf("%s: ApplicationSet %s", file, name)}
	fail := func(format string, args ...any) (*AppSet, []string, error) {
		return nil, n.list, fmt.Errorf("%s: %w", n.prefix, invalidf("%s", fmt.Sprintf(format, args...)))
	}
	js, _ := json.Marshal(m["spec"])
	var spec argoAppSetSpec
	if err := json.Unmarshal(js, &spec); err != nil {
		return fail("%v", fieldError(err))
	}
	for _, f := range unknownFields(m["spec"], reflect.TypeOf(argoAppSetSpec{}), "spec") {
		n.add(f, "unknown field; ignored")
	}
	if spec.TemplatePatch != nil {
		return fail("spec.templatePatch: not supported")
	}
	for field, v := range map[string]any{"spec.syncPolicy": spec.SyncPolicy, "spec.strategy": spec.Strategy, "spec.preservedFields": spec.PreservedFields, "spec.ignoreApplicationDifferences": spec.IgnoreApplicationDifferences, "spec.applyNestedSelectors": spec.ApplyNestedSelectors} {
		if v != nil && !isEmpty(v) {
			n.add(field, "not supported; ignored")
		}
	}
	for i, o := range spec.GoTemplateOptions {
		switch o {
		case "missingkey=default", "missingkey=invalid", "missingkey=zero", "missingkey=error":
		default:
			return fail("spec.goTemplateOptions[%d] %q: unknown option", i, o)
		}
	}
	s := &AppSet{Name: name, File: file, GoTemplate: spec.GoTemplate, GoTemplateOptions: spec.GoTemplateOptions, Template: spec.Template}
	if len(spec.Generators) == 0 {
		return fail("spec.generators: none given")
	}
	for i, g := range spec.Generators {
		gen, err := decodeGenerator(g)
		if err != nil {
			return fail("spec.generators[%d]%v", i, err)
		}
		s.Generators = append(s.Generators, gen)
	}
	if spec.Template == nil {
		return fail("spec.template is missing")
	}
	// Check the template's fields once, with a stand-in cluster, so that
	// its warnings are reported at load time and once.
	probe := deepCopy(spec.Template).(map[string]any)
	if spec, ok := probe["spec"].(map[string]any); ok {
		spec["destination"] = map[string]any{"name": "probe"}
	}
	probe["apiVersion"], probe["kind"] = ArgoAPIVersion, KindApp
	_, warns, err := convertArgoApp(file, probe)
	for _, w := range warns {
		n.list = append(n.list, strings.Replace(w, ": spec.", ": spec.template.spec.", 1))
	}
	if err != nil {
		return fail("spec.template: %v", strings.TrimPrefix(err.Error(), file+": "))
	}
	slices.Sort(n.list)
	return s, n.list, nil
}

func decodeGenerator(g map[string]any) (Generator, error) {
	if len(g) != 1 {
		keys := make([]string, 0, len(g))
		for k := range g {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return Generator{}, fmt.Errorf(": exactly one generator per entry, got %v", keys)
	}
	for kind, v := range g {
		body, _ := v.(map[string]any)
		for _, k := range []string{"template", "selector"} {
			if _, ok := body[k]; ok && !(kind == "clusters" && k == "selector") {
				return Generator{}, fmt.Errorf(".%s.%s: not supported", kind, k)
			}
		}
		switch kind {
		case "list":
			if _, ok := body["elementsYaml"]; ok {
				return Generator{}, fmt.Errorf(".list.elementsYaml: not supported; use elements")
			}
			var l ListGenerator
			js, _ := json.Marshal(body)
			if err := json.Unmarshal(js, &l); err != nil {
				return Generator{}, fmt.Errorf(".list: %v", fieldError(err))
			}
			return Generator{List: &l}, nil
		case "clusters":
			for k := range body {
				if k != "selector" && k != "values" {
					return Generator{}, fmt.Errorf(".clusters.%s: not supported", k)
				}
			}
			var c ClustersGenerator
			js, _ := json.Marshal(body)
			if err := json.Unmarshal(js, &c); err != nil {
				return Generator{}, fmt.Errorf(".clusters: %v", fieldError(err))
			}
			if c.Selector != nil {
				if _, err := metav1.LabelSelectorAsSelector(c.Selector); err != nil {
					return Generator{}, fmt.Errorf(".clusters.selector: %v", err)
				}
			}
			return Generator{Clusters: &c}, nil
		default:
			return Generator{}, fmt.Errorf(".%s: generator not supported (supported: list, clusters)", kind)
		}
	}
	return Generator{}, nil
}

// Expand renders one Application per parameter set, in generator order
// (clusters sorted by name). Every application is validated; names must be
// unique within the set. File of each application is the set's file.
func (s *AppSet) Expand(clusters []Cluster) ([]*Application, error) {
	where := fmt.Sprintf("%s: ApplicationSet %s", s.File, s.Name)
	var out []*Application
	seen := map[string]string{}
	for gi, g := range s.Generators {
		params, err := s.params(g, clusters)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.generators[%d]: %w", where, gi, err)
		}
		for pi, p := range params {
			doc, err := s.render(p)
			if err != nil {
				return nil, fmt.Errorf("%s: spec.generators[%d] item %d: spec.template: %w", where, gi, pi, err)
			}
			doc["apiVersion"], doc["kind"] = ArgoAPIVersion, KindApp
			a, warns, err := convertArgoApp(s.File, doc)
			if err != nil {
				return nil, fmt.Errorf("%s: generated %w", where, trimFile(err, s.File))
			}
			if a == nil {
				return nil, fmt.Errorf("%s: generated Application %s: %w", where, nameOf(doc), invalidf("%s", strings.TrimPrefix(lastOf(warns), fmt.Sprintf("%s: Application %s: ", s.File, nameOf(doc)))))
			}
			if err := Validate(a); err != nil {
				return nil, fmt.Errorf("%s: generated %w", where, trimFile(err, s.File))
			}
			if prev, dup := seen[a.Name]; dup {
				return nil, fmt.Errorf("%s: %w", where, invalidf("Application %s generated twice (%s and generators[%d] item %d)", a.Name, prev, gi, pi))
			}
			seen[a.Name] = fmt.Sprintf("generators[%d] item %d", gi, pi)
			out = append(out, a)
		}
	}
	return out, nil
}

type trimmed struct {
	msg string
	err error
}

func (t trimmed) Error() string { return t.msg }
func (t trimmed) Unwrap() error { return t.err }

// trimFile drops the leading "<file>: " of err's message, keeping err in
// the chain.
func trimFile(err error, file string) error {
	return trimmed{msg: strings.TrimPrefix(err.Error(), file+": "), err: err}
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// params yields the generator's parameter sets: nested maps for Go
// templates, flat "a.b" keys otherwise.
func (s *AppSet) params(g Generator, clusters []Cluster) ([]map[string]any, error) {
	switch {
	case g.List != nil:
		out := make([]map[string]any, 0, len(g.List.Elements))
		for _, e := range g.List.Elements {
			if s.GoTemplate {
				out = append(out, e)
				continue
			}
			flat := map[string]any{}
			for k, v := range e {
				if vals, ok := v.(map[string]any); ok && k == "values" {
					for vk, vv := range vals {
						flat["values."+vk] = scalarString(vv)
					}
					continue
				}
				flat[k] = scalarString(v)
			}
			out = append(out, flat)
		}
		return out, nil
	case g.Clusters != nil:
		sel := labels.Everything()
		if g.Clusters.Selector != nil {
			var err error
			if sel, err = metav1.LabelSelectorAsSelector(g.Clusters.Selector); err != nil {
				return nil, fmt.Errorf("clusters.selector: %w", err)
			}
		}
		sortedClusters := slices.Clone(clusters)
		slices.SortFunc(sortedClusters, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })
		var out []map[string]any
		for _, c := range sortedClusters {
			if !sel.Matches(labels.Set(c.Labels)) {
				continue
			}
			p, err := s.clusterParams(g.Clusters, c)
			if err != nil {
				return nil, fmt.Errorf("clusters: cluster %s: %w", c.Name, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	return nil, nil
}

func (s *AppSet) clusterParams(g *ClustersGenerator, c Cluster) (map[string]any, error) {
	lbls := map[string]any{}
	for k, v := range c.Labels {
		lbls[k] = v
	}
	var p map[string]any
	if s.GoTemplate {
		p = map[string]any{
			"name": c.Name, "nameNormalized": c.Name, "server": ServerScheme + c.Name,
			"metadata": map[string]any{"labels": lbls, "annotations": map[string]any{}},
		}
	} else {
		p = map[string]any{"name": c.Name, "nameNormalized": c.Name, "server": ServerScheme + c.Name}
		for k, v := range c.Labels {
			p["metadata.labels."+k] = v
		}
	}
	values := map[string]any{}
	keys := make([]string, 0, len(g.Values))
	for k := range g.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := s.renderString(g.Values[k], p)
		if err != nil {
			return nil, fmt.Errorf("values.%s: %w", k, err)
		}
		if s.GoTemplate {
			values[k] = v
		} else {
			p["values."+k] = v
		}
	}
	if s.GoTemplate {
		p["values"] = values
	}
	return p, nil
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64, bool:
		return fmt.Sprint(x)
	}
	js, _ := json.Marshal(v)
	return string(js)
}
