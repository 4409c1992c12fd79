package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ChunkBytes is the largest bundle part stored in one Secret.
const ChunkBytes = 768 << 10

// InlineBytes is the largest encoded bundle stored in the index Secret
// itself, with the inventory, rather than in chunk Secrets: every inventory
// write carries it again, so only small bundles (most apps: a few objects)
// go there.
const InlineBytes = 32 << 10

// fieldBundle is the index Secret's field holding an inline bundle.
const fieldBundle = "bundle"

// Labels on the Secrets the store writes.
const (
	labelRecord  = "flotilla.dev/record"
	labelAppHash = "flotilla.dev/app-hash"
	labelDigest  = "flotilla.dev/digest"
	recordIndex  = "app-index"
	recordChunk  = "app-bundle-chunk"
	annoApp      = "flotilla.dev/app"
)

// Entry is one object of an app's inventory.
type Entry struct {
	Group     string `json:"g,omitempty"`
	Version   string `json:"v"`
	Kind      string `json:"k"`
	Namespace string `json:"ns,omitempty"`
	Name      string `json:"n"`
	// Hash and FP remember, for a restart, that the live object with
	// fingerprint FP matched the desired object with hash Hash, so the
	// restarted agent need not dry-run it again.
	Hash string `json:"h,omitempty"`
	FP   string `json:"f,omitempty"`
}

// Key returns the entry's object key.
func (e Entry) Key() manifest.Key {
	return manifest.Key{Group: e.Group, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
}

// GVK returns the entry's group, version and kind.
func (e Entry) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: e.Group, Version: e.Version, Kind: e.Kind}
}

// Record is what the store keeps for one app.
type Record struct {
	App string
	// Bundle is the last accepted bundle.
	Bundle *apiv1alpha1.Bundle
	// Removed marks an app the hub removed whose clean-up has not finished.
	Removed bool
	// Inventory lists every object the app may own in the cluster.
	Inventory []Entry
	// HooksDone is the digest of the last bundle whose hooks a sync
	// operation ran to success, so that a restarted agent does not run
	// them again.
	HooksDone string
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9-]+`)

func appHash(app string) string {
	h := sha256.Sum256([]byte(app))
	return hex.EncodeToString(h[:])[:16]
}

// indexName is a valid Secret name for app: a readable prefix and a hash.
func indexName(app string) string {
	p := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(app), "-"), "-")
	if len(p) > 40 {
		p = p[:40]
	}
	return "flotilla-app-" + p + "-" + appHash(app)
}

func digestLabel(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 32 {
		d = d[:32]
	}
	return d
}

func chunkName(app, digest string, i int) string {
	return "flotilla-bundle-" + appHash(app) + "-" + digestLabel(digest) + "-" + itoa(i)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
