package diff

import (
	"reflect"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Result of comparing an object's desired and live state.
type Result struct {
	// Equal is true when nothing the comparison looks at differs.
	Equal bool
	// Diff is a unified diff from live to desired (YAML), empty when Equal.
	Diff string
}

// Compare compares want (the result of a server-side dry-run apply of the
// desired object, or the desired object itself when the live one is
// missing) with live, after Normalize and the ignore rules matching k. A nil
// live object is never equal.
func Compare(k manifest.Key, want, live *unstructured.Unstructured, rules []Rule) Result {
	w, l := Normalize(want), Normalize(live)
	applyIgnore(k, rules, live, w, l)
	if live != nil && reflect.DeepEqual(w, l) {
		return Result{Equal: true}
	}
	return Result{Diff: Unified(k.String(), l, w)}
}

// Unified renders a unified diff of two objects as YAML, from live to
// desired. A nil side renders as empty. The values of a Secret are masked
// (maskSecrets): the maps are modified.
func Unified(name string, live, desired map[string]any) string {
	maskSecrets(live, desired)
	a, b := toYAML(live), toYAML(desired)
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: "live " + name, ToFile: "desired " + name, Context: 3,
	})
	if err != nil {
		return ""
	}
	return d
}

func toYAML(m map[string]any) string {
	if m == nil {
		return ""
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return ""
	}
	return string(b)
}
