package manifest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"testing"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// The seed corpora live in testdata/fuzz/<FuzzName>; run a target with
// `go test ./shared/manifest -run '^$' -fuzz FuzzParse -fuzztime 1m`.

func gzipped(t testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParse: Parse never panics; whatever it accepts is valid, and parses
// again to the same objects from its JSON form.
func FuzzParse(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalidObject) && len(objs) != 0 {
				t.Fatalf("error %v with %d objects", err, len(objs))
			}
			return
		}
		for i, o := range objs {
			if err := Validate(o); err != nil {
				t.Fatalf("object %d accepted but invalid: %v", i, err)
			}
		}
		items := make([]any, len(objs))
		for i, o := range objs {
			items[i] = o.Object
		}
		js, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
		if err != nil {
			t.Fatalf("accepted objects do not encode: %v", err)
		}
		again, err := Parse("again.json", js)
		if err != nil {
			t.Fatalf("accepted objects do not parse again: %v\n%s", err, js)
		}
		if len(again) != len(objs) {
			t.Fatalf("parsed %d objects, then %d", len(objs), len(again))
		}
		for i := range objs {
			a, _ := json.Marshal(objs[i].Object)
			b, _ := json.Marshal(again[i].Object)
			if !bytes.Equal(a, b) {
				t.Fatalf("object %d changed on the way round:\n%s\n%s", i, a, b)
			}
		}
	})
}

// FuzzDecodeObjects feeds arbitrary JSON (gzip-compressed, as a bundle
// carries it) to DecodeObjects: no panic; what it accepts is valid, and a
// bundle built from it decodes to the same objects and verifies.
func FuzzDecodeObjects(f *testing.F) {
	f.Add([]byte(`[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b := &apiv1alpha1.Bundle{App: "fuzz", ObjectsGzip: gzipped(t, raw)}
		objs, err := DecodeObjects(b)
		if err != nil {
			return
		}
		for i, o := range objs {
			if err := Validate(o); err != nil {
				t.Fatalf("object %d accepted but invalid: %v", i, err)
			}
		}
		nb, err := NewBundle("fuzz", "ns", "rev", "path", objs, nil, nil)
		if err != nil {
			t.Fatalf("accepted objects do not make a bundle: %v", err)
		}
		if err := VerifyDigest(nb); err != nil {
			t.Fatalf("new bundle does not verify: %v", err)
		}
		again, err := DecodeObjects(nb)
		if err != nil {
			t.Fatalf("new bundle does not decode: %v", err)
		}
		c1, err1 := CanonicalJSON(objs)
		c2, err2 := CanonicalJSON(again)
		if err1 != nil || err2 != nil || !bytes.Equal(c1, c2) {
			t.Fatalf("objects changed on the way round (%v, %v):\n%s\n%s", err1, err2, c1, c2)
		}
	})
}

// FuzzBundleWire feeds arbitrary bytes as a bundle's compressed objects and
// digest: DecodeObjects and VerifyDigest never panic, and a digest that
// verifies is the one the content gives.
func FuzzBundleWire(f *testing.F) {
	f.Add(gzipped(f, []byte(`[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}]`)), "sha256:00")
	f.Add([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff}, "")
	f.Fuzz(func(t *testing.T, objectsGzip []byte, digest string) {
		b := &apiv1alpha1.Bundle{App: "fuzz", Namespace: "ns", Digest: digest, ObjectsGzip: objectsGzip}
		_, _ = DecodeObjects(b)
		if err := VerifyDigest(b); err == nil {
			b.Digest += "0"
			if VerifyDigest(b) == nil {
				t.Fatal("two digests verify the same content")
			}
		}
	})
}
