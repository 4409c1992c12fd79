package diff

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Rule is one ignoreDifferences entry. Group and Kind match exactly or with
// "*"; empty Name and Namespace match every object.
type Rule struct {
	Group, Kind, Namespace, Name string
	// JSONPointers (RFC 6901) name fields left out of the comparison.
	JSONPointers []string
	// Managers are field managers whose fields (in the live object's
	// managedFields) are left out of the comparison.
	Managers []string
}

// RulesFrom converts the protocol's ignoreDifferences.
func RulesFrom(in []*apiv1alpha1.IgnoreDifference) []Rule {
	out := make([]Rule, 0, len(in))
	for _, r := range in {
		out = append(out, Rule{
			Group: r.GetGroup(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName(),
			JSONPointers: r.GetJsonPointers(), Managers: r.GetManagedFieldsManagers(),
		})
	}
	return out
}

// NeedManagedFields reports whether a rule matching k ignores fields by
// manager, which needs the live object's managedFields.
func NeedManagedFields(k manifest.Key, rules []Rule) bool {
	for _, r := range rules {
		if len(r.Managers) > 0 && r.matches(k) {
			return true
		}
	}
	return false
}

func (r Rule) matches(k manifest.Key) bool {
	return (r.Group == "*" || r.Group == k.Group) &&
		(r.Kind == "*" || r.Kind == k.Kind) &&
		(r.Namespace == "" || r.Namespace == k.Namespace) &&
		(r.Name == "" || r.Name == k.Name)
}

// applyIgnore removes the fields the matching rules ignore from both
// normalised objects. live (the real live object) provides managedFields.
func applyIgnore(k manifest.Key, rules []Rule, live *unstructured.Unstructured, objs ...map[string]any) {
	for _, r := range rules {
		if !r.matches(k) {
			continue
		}
		for _, p := range r.JSONPointers {
			toks := pointerTokens(p)
			for _, o := range objs {
				removePointer(o, toks)
			}
		}
		if len(r.Managers) == 0 || live == nil {
			continue
		}
		for _, mf := range live.GetManagedFields() {
			if !contains(r.Managers, mf.Manager) || mf.FieldsV1 == nil {
				continue
			}
			set := &fieldpath.Set{}
			if err := set.FromJSON(mf.FieldsV1.GetRawReader()); err != nil {
				continue
			}
			set.Leaves().Iterate(func(p fieldpath.Path) {
				for _, o := range objs {
					removePath(o, p)
				}
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pointerTokens splits an RFC 6901 pointer into unescaped tokens.
func pointerTokens(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	toks := strings.Split(p, "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks
}

// removePointer deletes the field a pointer names; missing paths are no-ops.
func removePointer(node any, toks []string) any {
	if len(toks) == 0 {
		return node
	}
	switch n := node.(type) {
	case map[string]any:
		if len(toks) == 1 {
			delete(n, toks[0])
			return n
		}
		if c, ok := n[toks[0]]; ok {
			n[toks[0]] = removePointer(c, toks[1:])
		}
		return n
	case []any:
		i, err := strconv.Atoi(toks[0])
		if err != nil || i < 0 || i >= len(n) {
			return n
		}
		if len(toks) == 1 {
			return append(n[:i:i], n[i+1:]...)
		}
		n[i] = removePointer(n[i], toks[1:])
		return n
	}
	return node
}

// removePath deletes the field a managedFields path names.
func removePath(node any, p fieldpath.Path) any {
	if len(p) == 0 {
		return node
	}
	pe := p[0]
	switch n := node.(type) {
	case map[string]any:
		if pe.FieldName == nil {
			return n
		}
		if len(p) == 1 {
			delete(n, *pe.FieldName)
			return n
		}
		if c, ok := n[*pe.FieldName]; ok {
			n[*pe.FieldName] = removePath(c, p[1:])
		}
		return n
	case []any:
		i := listIndex(n, pe)
		if i < 0 {
			return n
		}
		if len(p) == 1 {
			return append(n[:i:i], n[i+1:]...)
		}
		n[i] = removePath(n[i], p[1:])
		return n
	}
	return node
}

func listIndex(items []any, pe fieldpath.PathElement) int {
	switch {
	case pe.Index != nil:
		if *pe.Index < len(items) {
			return *pe.Index
		}
	case pe.Key != nil:
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			match := true
			for _, f := range *pe.Key {
				if fmt.Sprint(m[f.Name]) != fmt.Sprint(f.Value.Unstructured()) {
					match = false
					break
				}
			}
			if match {
				return i
			}
		}
	case pe.Value != nil:
		want := (*pe.Value).Unstructured()
		for i, it := range items {
			if reflect.DeepEqual(it, want) || fmt.Sprint(it) == fmt.Sprint(want) {
				return i
			}
		}
	}
	return -1
}

// RespectIgnored returns the object to apply over an existing live object:
// desired with every field an ignore rule names taken from live instead
// (JSON pointers: live's value, or nothing when live has none; managers:
// left out, since those fields belong to the other manager). So a sync never
// overwrites what ignoreDifferences hands to someone else, such as an HPA's
// replicas. desired is returned unchanged when no rule matches or live is
// nil.
func RespectIgnored(k manifest.Key, rules []Rule, desired, live *unstructured.Unstructured) *unstructured.Unstructured {
	if live == nil {
		return desired
	}
	var out *unstructured.Unstructured
	for _, r := range rules {
		if !r.matches(k) {
			continue
		}
		if out == nil {
			out = desired.DeepCopy()
		}
		for _, p := range r.JSONPointers {
			toks := pointerTokens(p)
			if v, ok := getPointer(live.Object, toks); ok {
				setPointer(out.Object, toks, v)
			} else {
				removePointer(out.Object, toks)
			}
		}
		if len(r.Managers) > 0 {
			applyIgnore(k, []Rule{{Group: r.Group, Kind: r.Kind, Managers: r.Managers}}, live, out.Object)
		}
	}
	if out == nil {
		return desired
	}
	return out
}

func getPointer(node any, toks []string) (any, bool) {
	for _, t := range toks {
		switch n := node.(type) {
		case map[string]any:
			v, ok := n[t]
			if !ok {
				return nil, false
			}
			node = v
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			node = n[i]
		default:
			return nil, false
		}
	}
	return node, true
}

// setPointer sets the value at a pointer whose parent exists in node.
func setPointer(node any, toks []string, v any) {
	if len(toks) == 0 {
		return
	}
	parent, ok := getPointer(node, toks[:len(toks)-1])
	if !ok {
		return
	}
	last := toks[len(toks)-1]
	switch p := parent.(type) {
	case map[string]any:
		p[last] = runtimeDeepCopy(v)
	case []any:
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(p) {
			p[i] = runtimeDeepCopy(v)
		}
	}
}

func runtimeDeepCopy(v any) any { return runtime.DeepCopyJSONValue(v) }
