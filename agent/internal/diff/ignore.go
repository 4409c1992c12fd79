package diff

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
			if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
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
