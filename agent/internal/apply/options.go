package apply

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// SyncOptions are the app-wide sync options, named as in Argo CD.
type SyncOptions struct {
	// CreateNamespace creates the destination namespace before the first wave.
	CreateNamespace bool
	// PruneLast prunes after every wave is applied and healthy.
	PruneLast bool
	// Replace and Force delete and re-create an object whose apply fails on
	// an immutable field.
	Replace, Force bool
	// RespectIgnoreDifferences is accepted for Argo CD compatibility; the
	// agent always behaves as if it were set (ignored fields of an existing
	// object keep their live values when it is applied).
	RespectIgnoreDifferences bool
}

// ParseSyncOptions reads "Key=true|false" options; unknown keys are ignored.
func ParseSyncOptions(opts []string) SyncOptions {
	var o SyncOptions
	for _, kv := range opts {
		k, v := splitOption(kv)
		switch k {
		case "CreateNamespace":
			o.CreateNamespace = v
		case "PruneLast":
			o.PruneLast = v
		case "Replace":
			o.Replace = v
		case "Force":
			o.Force = v
		case "RespectIgnoreDifferences":
			o.RespectIgnoreDifferences = v
		}
	}
	return o
}

// ObjectOptions are the per-object options of the sync-options annotation
// (flotilla.dev/sync-options or argocd.argoproj.io/sync-options), a comma
// separated list such as "Prune=false,Replace=true".
type ObjectOptions struct {
	// NoPrune keeps the object when it leaves the bundle (Prune=false).
	NoPrune bool
	// PruneLast prunes this object after all waves (PruneLast=true).
	PruneLast bool
	// Replace and Force as for SyncOptions, for this object only.
	Replace, Force bool
}

// ObjectOptionsOf reads the per-object sync options of obj.
func ObjectOptionsOf(obj *unstructured.Unstructured) ObjectOptions {
	var o ObjectOptions
	if obj == nil {
		return o
	}
	ann := obj.GetAnnotations()
	for _, a := range []string{ann[manifest.ArgoSyncOptionsAnnotation], ann[manifest.SyncOptionsAnnotation]} {
		for _, kv := range strings.Split(a, ",") {
			k, v := splitOption(kv)
			switch k {
			case "Prune":
				o.NoPrune = !v
			case "PruneLast":
				o.PruneLast = v
			case "Replace":
				o.Replace = v
			case "Force":
				o.Force = v
			}
		}
	}
	return o
}

func splitOption(kv string) (string, bool) {
	k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
	return strings.TrimSpace(k), strings.EqualFold(strings.TrimSpace(v), "true")
}
