package diff

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func deploy(replicas int64, image string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "ns", "resourceVersion": "7", "generation": int64(2), "uid": "u"},
		"spec": map[string]any{
			"replicas": replicas,
			"template": map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "web", "image": image},
				map[string]any{"name": "sidecar", "image": "envoy"},
			}}},
		},
		"status": map[string]any{"replicas": replicas},
	}}
}

var key = manifest.Key{Group: "apps", Kind: "Deployment", Namespace: "ns", Name: "web"}

func TestCompare(t *testing.T) {
	t.Parallel()
	scaled := deploy(5, "nginx")
	scaled.SetManagedFields([]metav1.ManagedFieldsEntry{{
		Manager: "hpa", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:replicas":{}}}`),
	}})
	sidecar := deploy(2, "nginx")
	sidecar.SetManagedFields([]metav1.ManagedFieldsEntry{{
		Manager: "injector", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"sidecar\"}":{".":{},"f:image":{},"f:name":{}}}}}}}`),
	}})
	statusOnly := deploy(2, "nginx")
	statusOnly.Object["status"] = map[string]any{"replicas": int64(1)}
	statusOnly.SetResourceVersion("9")

	tests := []struct {
		name  string
		want  *unstructured.Unstructured
		live  *unstructured.Unstructured
		rules []Rule
		equal bool
		diff  []string
	}{
		{name: "status and metadata noise are not drift", want: deploy(2, "nginx"), live: statusOnly, equal: true},
		{name: "replicas drift", want: deploy(2, "nginx"), live: scaled, diff: []string{"-  replicas: 5", "+  replicas: 2"}},
		{name: "ignored by pointer", want: deploy(2, "nginx"), live: scaled, rules: []Rule{{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/replicas"}}}, equal: true},
		{name: "pointer rule of another kind", want: deploy(2, "nginx"), live: scaled, rules: []Rule{{Group: "", Kind: "Service", JSONPointers: []string{"/spec/replicas"}}}},
		{name: "ignored by manager", want: deploy(2, "nginx"), live: scaled, rules: []Rule{{Group: "apps", Kind: "*", Managers: []string{"hpa"}}}, equal: true},
		{name: "list item owned by ignored manager", want: deploy(2, "nginx"), live: withSidecarImage(sidecar, "envoy:2"), rules: []Rule{{Group: "*", Kind: "Deployment", Managers: []string{"injector"}}}, equal: true},
		{name: "image drift through a pointer into a list", want: deploy(2, "nginx"), live: deploy(2, "httpd"), rules: []Rule{{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/template/spec/containers/1"}}}, diff: []string{"-      - image: httpd", "+      - image: nginx"}},
		{name: "missing live", want: deploy(2, "nginx"), live: nil, diff: []string{"+  replicas: 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := deploy(2, "nginx")
			got := Compare(key, tc.want, tc.live, tc.rules)
			if got.Equal != tc.equal {
				t.Fatalf("Equal = %v, want %v; diff:\n%s", got.Equal, tc.equal, got.Diff)
			}
			for _, d := range tc.diff {
				if !strings.Contains(got.Diff, d) {
					t.Errorf("diff lacks %q:\n%s", d, got.Diff)
				}
			}
			if diff := cmp.Diff(before.Object, tc.want.Object); diff != "" && tc.want != nil {
				t.Errorf("Compare modified its input (-before +after):\n%s", diff)
			}
		})
	}
}

func withSidecarImage(d *unstructured.Unstructured, image string) *unstructured.Unstructured {
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	cs[1].(map[string]any)["image"] = image
	_ = unstructured.SetNestedSlice(d.Object, cs, "spec", "template", "spec", "containers")
	return d
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a, b := deploy(2, "nginx"), deploy(2, "nginx")
	b.SetResourceVersion("99")
	b.Object["status"] = map[string]any{"readyReplicas": int64(2)}
	if Fingerprint(a) != Fingerprint(b) {
		t.Error("fingerprint changes with status or resourceVersion")
	}
	if Fingerprint(a) == Fingerprint(deploy(3, "nginx")) {
		t.Error("fingerprint ignores spec")
	}
}

func TestRespectIgnored(t *testing.T) {
	t.Parallel()
	rules := []Rule{{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/replicas", "/spec/paused"}}}
	desired := deploy(2, "nginx")
	desired.Object["spec"].(map[string]any)["paused"] = true
	got := RespectIgnored(key, rules, desired, deploy(7, "httpd"))
	if r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); r != 7 {
		t.Errorf("replicas = %d, want the live 7", r)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "paused"); ok {
		t.Error("paused kept although live has none")
	}
	if cs, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers"); cs[0].(map[string]any)["image"] != "nginx" {
		t.Error("a field not ignored took the live value")
	}
	if r, _, _ := unstructured.NestedInt64(desired.Object, "spec", "replicas"); r != 2 {
		t.Error("RespectIgnored modified desired")
	}
	if RespectIgnored(key, rules, desired, nil) != desired {
		t.Error("a missing live object must give desired unchanged")
	}
}

func TestPointerTokens(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff([]string{"metadata", "annotations", "a/b~c"}, pointerTokens("/metadata/annotations/a~1b~0c")); diff != "" {
		t.Error(diff)
	}
}
