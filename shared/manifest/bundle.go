package manifest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// MaxBundleBytes bounds the uncompressed objects of one bundle. It protects
// the agent from a decompression bomb; the hub refuses to build larger ones.
const MaxBundleBytes = 256 << 20

// ErrBundleTooLarge is returned for bundles over MaxBundleBytes.
var ErrBundleTooLarge = errors.New("bundle too large")

// gzipWriters reuses compressors: a new one allocates about 1 MB.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

// SortObjects orders objects by Key, the canonical bundle order.
func SortObjects(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		ka, kb := KeyOf(a), KeyOf(b)
		switch {
		case ka.Less(kb):
			return -1
		case kb.Less(ka):
			return 1
		}
		return 0
	})
}

// CanonicalJSON encodes objects as a JSON array in canonical order with
// sorted map keys. objs is sorted in place.
func CanonicalJSON(objs []*unstructured.Unstructured) ([]byte, error) {
	SortObjects(objs)
	items := make([]map[string]any, len(objs))
	for i, o := range objs {
		items[i] = o.Object
	}
	b, err := json.Marshal(items) // encoding/json sorts map keys
	if err != nil {
		return nil, fmt.Errorf("encode objects: %w", err)
	}
	return b, nil
}

// NewBundle builds a bundle for app from rendered objects and fills in the
// compressed objects and the digest. policy and ignore may be nil.
func NewBundle(app, namespace, revision, sourcePath string, objs []*unstructured.Unstructured, policy *apiv1alpha1.SyncPolicy, ignore []*apiv1alpha1.IgnoreDifference) (*apiv1alpha1.Bundle, error) {
	raw, err := CanonicalJSON(objs)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", app, err)
	}
	if len(raw) > MaxBundleBytes {
		return nil, fmt.Errorf("bundle %s: %d bytes of objects: %w (limit %d)", app, len(raw), ErrBundleTooLarge, MaxBundleBytes)
	}
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, err = zw.Write(raw)
	if err == nil {
		err = zw.Close()
	}
	gzipWriters.Put(zw)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: compress: %w", app, err)
	}
	b := &apiv1alpha1.Bundle{
		App:               app,
		Namespace:         namespace,
		Revision:          revision,
		SourcePath:        sourcePath,
		SyncPolicy:        policy,
		IgnoreDifferences: ignore,
		ObjectsGzip:       buf.Bytes(),
	}
	b.Digest = digest(b, raw)
	return b, nil
}

// digest hashes what decides what the agent does: the app, namespace, sync
// policy, ignore rules and the canonical objects. The revision and source path
// are left out on purpose: a commit that leaves an app's objects unchanged
// does not change its digest and so is not pushed again.
func digest(b *apiv1alpha1.Bundle, rawObjects []byte) string {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "flotilla.bundle.v1\x00%s\x00%s\x00", b.App, b.Namespace)
	opts := proto.MarshalOptions{Deterministic: true}
	if b.SyncPolicy != nil {
		p, _ := opts.Marshal(b.SyncPolicy)
		h.Write(p)
	}
	h.Write([]byte{0})
	for _, ig := range b.IgnoreDifferences {
		p, _ := opts.Marshal(ig)
		h.Write(p)
		h.Write([]byte{0})
	}
	h.Write(rawObjects)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// DecodeObjects decompresses and decodes a bundle's objects, refusing more
// than MaxBundleBytes, and validates each one.
func DecodeObjects(b *apiv1alpha1.Bundle) ([]*unstructured.Unstructured, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b.GetObjectsGzip()))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: decompress: %w", b.GetApp(), err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: decompress: %w", b.GetApp(), err)
	}
	if len(raw) > MaxBundleBytes {
		return nil, fmt.Errorf("bundle %s: %w", b.GetApp(), ErrBundleTooLarge)
	}
	var items []map[string]any
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("bundle %s: decode objects: %w", b.GetApp(), err)
	}
	out := make([]*unstructured.Unstructured, 0, len(items))
	for i, m := range items {
		o := &unstructured.Unstructured{Object: m}
		if err := Validate(o); err != nil {
			return nil, fmt.Errorf("bundle %s: object %d: %w", b.GetApp(), i, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// VerifyDigest recomputes b's digest from its content and reports whether it
// matches b.Digest.
func VerifyDigest(b *apiv1alpha1.Bundle) error {
	zr, err := gzip.NewReader(bytes.NewReader(b.GetObjectsGzip()))
	if err != nil {
		return fmt.Errorf("bundle %s: decompress: %w", b.GetApp(), err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxBundleBytes+1))
	if err != nil {
		return fmt.Errorf("bundle %s: decompress: %w", b.GetApp(), err)
	}
	if got := digest(b, raw); got != b.GetDigest() {
		return fmt.Errorf("bundle %s: digest %s does not match content %s", b.GetApp(), b.GetDigest(), got)
	}
	return nil
}
