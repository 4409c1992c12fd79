package engine

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func TestWriteAction(t *testing.T) {
	obj := func(rv string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetResourceVersion(rv)
		return u
	}
	tests := []struct {
		name      string
		live, out *unstructured.Unstructured
		replaced  bool
		want      Action
	}{
		{"missing before", nil, obj("5"), false, Created},
		{"resourceVersion moved", obj("4"), obj("5"), false, Configured},
		{"apply changed nothing", obj("5"), obj("5"), false, Unchanged},
		{"deleted and re-created", obj("4"), obj("9"), true, Replaced},
	}
	for _, tc := range tests {
		if got := writeAction(tc.live, tc.out, tc.replaced); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestChangeSetSummary(t *testing.T) {
	c := newChangeSet()
	if got := c.Summary(); got != "" {
		t.Errorf("empty summary %q", got)
	}
	k := func(name string) manifest.Key { return manifest.Key{Kind: "ConfigMap", Namespace: "ns", Name: name} }
	c.Add(k("a"), Unchanged)
	c.Add(k("b"), Pruned)
	c.Add(k("c"), Created)
	c.Add(k("d"), Created)
	if got, want := c.Summary(), "2 created, 1 unchanged, 1 pruned"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if !c.Has(k("b")) || c.Has(k("x")) || (*ChangeSet)(nil).Has(k("a")) {
		t.Error("Has")
	}
}
