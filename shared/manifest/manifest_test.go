package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // Key.String of each object
		err      string   // substring of the error
	}{
		{name: "multi-document", in: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b, namespace: x}\n",
			want: []string{"/ConfigMap /a", "apps/Deployment x/b"}},
		{name: "json", in: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}`, want: []string{"/Service /s"}},
		{name: "list", in: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n",
			want: []string{"/ConfigMap /a", "/Secret /b"}},
		{name: "empty", in: "\n---\n", want: nil},
		{name: "broken yaml", in: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n", err: "f.yaml: document 1"},
		{name: "no kind", in: "apiVersion: v1\nmetadata: {name: a}\n", err: "field kind is missing"},
		{name: "no apiVersion in second doc", in: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n", err: "document 2: invalid object: field apiVersion is missing"},
		{name: "no name", in: "apiVersion: v1\nkind: ConfigMap\n", err: "field metadata.name is missing (ConfigMap)"},
		{name: "generateName on a plain object", in: "apiVersion: v1\nkind: Pod\nmetadata: {generateName: p-}\n", err: `Pod with metadata.generateName "p-" is not a hook`},
		{name: "generateName on a Skip hook", in: "apiVersion: v1\nkind: Pod\nmetadata: {generateName: p-, annotations: {argocd.argoproj.io/hook: Skip}}\n", err: "is not a hook"},
		{name: "generateName on a hook", in: "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-, namespace: db, annotations: {argocd.argoproj.io/hook: PreSync}}\n",
			want: []string{"batch/Job db/migrate-"}},
		{name: "generateName on a Helm hook", in: "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: seed-, annotations: {helm.sh/hook: post-install}}\n",
			want: []string{"batch/Job /seed-"}},
		{name: "list item bad", in: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, metadata: {name: a}}\n", err: "item 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Parse("f.yaml", []byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, KeyOf(o).String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrackingID(t *testing.T) {
	for _, k := range []Key{
		{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "front"},
		{Kind: "Namespace", Name: "web"},
	} {
		id := TrackingID("guestbook", k)
		app, got, ok := ParseTrackingID(id)
		if !ok || app != "guestbook" || got != k {
			t.Errorf("ParseTrackingID(%q) = %q, %+v, %v", id, app, got, ok)
		}
	}
	for _, bad := range []string{"", "app", "app:apps/Deployment", "app:apps/:ns/name", "app:apps/Deployment:ns/"} {
		if _, _, ok := ParseTrackingID(bad); ok {
			t.Errorf("ParseTrackingID(%q) accepted", bad)
		}
	}
}

func objs(t *testing.T, yaml string) []*unstructured.Unstructured {
	t.Helper()
	o, err := Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

const twoObjects = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n"

func TestBundleDigest(t *testing.T) {
	policy := &apiv1alpha1.SyncPolicy{Automated: true, Prune: true}
	b1, err := NewBundle("web", "ns", "rev1", "apps/web", objs(t, twoObjects), policy, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Same objects in another order, another revision: same digest.
	reordered := objs(t, twoObjects)
	reordered[0], reordered[1] = reordered[1], reordered[0]
	b2, err := NewBundle("web", "ns", "rev2", "apps/web", reordered, policy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b1.Digest != b2.Digest || !strings.HasPrefix(b1.Digest, "sha256:") {
		t.Fatalf("digests %s and %s differ for the same content", b1.Digest, b2.Digest)
	}
	// Anything that changes what the agent does changes the digest.
	for name, mk := range map[string]func() (*apiv1alpha1.Bundle, error){
		"namespace": func() (*apiv1alpha1.Bundle, error) {
			return NewBundle("web", "other", "rev1", "apps/web", objs(t, twoObjects), policy, nil)
		},
		"policy": func() (*apiv1alpha1.Bundle, error) {
			return NewBundle("web", "ns", "rev1", "apps/web", objs(t, twoObjects), &apiv1alpha1.SyncPolicy{Automated: true}, nil)
		},
		"ignore": func() (*apiv1alpha1.Bundle, error) {
			return NewBundle("web", "ns", "rev1", "apps/web", objs(t, twoObjects), policy, []*apiv1alpha1.IgnoreDifference{{Kind: "ConfigMap", JsonPointers: []string{"/data"}}})
		},
		"objects": func() (*apiv1alpha1.Bundle, error) {
			return NewBundle("web", "ns", "rev1", "apps/web", objs(t, strings.Replace(twoObjects, "k: v", "k: w", 1)), policy, nil)
		},
	} {
		b, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		if b.Digest == b1.Digest {
			t.Errorf("changing the %s left the digest unchanged", name)
		}
	}
	// Round trip and verification.
	got, err := DecodeObjects(b1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || KeyOf(got[0]).String() != "/ConfigMap /c" {
		t.Fatalf("decoded %d objects, first %v", len(got), KeyOf(got[0]))
	}
	if err := VerifyDigest(b1); err != nil {
		t.Fatal(err)
	}
	b1.Namespace = "tampered"
	if err := VerifyDigest(b1); err == nil {
		t.Fatal("tampered bundle verified")
	}
}

func TestDecodeRefusesGarbage(t *testing.T) {
	_, err := DecodeObjects(&apiv1alpha1.Bundle{App: "web", ObjectsGzip: []byte("not gzip")})
	if err == nil || !strings.Contains(err.Error(), "bundle web") {
		t.Fatalf("garbage: %v", err)
	}
	if errors.Is(err, ErrBundleTooLarge) {
		t.Fatal("garbage reported as too large")
	}
}
