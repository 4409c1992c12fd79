package diff

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func secret(data map[string]any, stringData map[string]any, annotations map[string]any) *unstructured.Unstructured {
	o := map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "db", "namespace": "app"},
	}
	if annotations != nil {
		o["metadata"].(map[string]any)["annotations"] = annotations
	}
	if data != nil {
		o["data"] = data
	}
	if stringData != nil {
		o["stringData"] = stringData
	}
	return &unstructured.Unstructured{Object: o}
}

// No value of a Secret appears in a diff, live or desired, in data,
// stringData or kubectl's last-applied annotation; a changed key still
// shows as changed and an unchanged one as unchanged.
func TestSecretValuesMasked(t *testing.T) {
	t.Parallel()
	k := manifest.Key{Kind: "Secret", Namespace: "app", Name: "db"}
	live := secret(map[string]any{"password": "bGl2ZS1zM2NyZXQ=", "user": "YWRtaW4=", "old": "b2xkLXNlY3JldA=="}, nil,
		map[string]any{lastApplied: `{"data":{"password":"bGl2ZS1zM2NyZXQ="}}`})
	want := secret(map[string]any{"password": "ZGVzaXJlZC1zM2NyZXQ=", "user": "YWRtaW4="}, map[string]any{"token": "plain-t0ken"}, nil)
	r := Compare(k, want, live, nil)
	if r.Equal {
		t.Fatal("different Secrets compared equal")
	}
	for _, secretValue := range []string{"bGl2ZS1zM2NyZXQ=", "ZGVzaXJlZC1zM2NyZXQ=", "YWRtaW4=", "b2xkLXNlY3JldA==", "plain-t0ken", "live-s3cret", "desired-s3cret"} {
		if strings.Contains(r.Diff, secretValue) {
			t.Errorf("diff shows the value %q:\n%s", secretValue, r.Diff)
		}
	}
	for _, line := range []string{
		"-  password: ++++++++\n", "+  password: +++++++++\n", // changed: masks differ
		"   user: ++++++++\n",  // unchanged: same mask, a context line
		"-  old: ++++++++\n",   // removed
		"+  token: ++++++++\n", // added
	} {
		if !strings.Contains(r.Diff, line) {
			t.Errorf("diff has no line %q:\n%s", line, r.Diff)
		}
	}
	// A missing live object (to be created) is masked too.
	if d := Unified(k.String(), nil, Normalize(want)); strings.Contains(d, "plain-t0ken") || strings.Contains(d, "ZGVzaXJlZC1zM2NyZXQ=") {
		t.Errorf("creation diff shows values:\n%s", d)
	}
}

// Other kinds keep their values.
func TestConfigMapNotMasked(t *testing.T) {
	t.Parallel()
	k := manifest.Key{Kind: "ConfigMap", Namespace: "app", Name: "c"}
	cm := func(v string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "c", "namespace": "app"}, "data": map[string]any{"k": v}}}
	}
	r := Compare(k, cm("new"), cm("old"), nil)
	if !strings.Contains(r.Diff, "-  k: old") || !strings.Contains(r.Diff, "+  k: new") {
		t.Errorf("ConfigMap diff lost its values:\n%s", r.Diff)
	}
}
