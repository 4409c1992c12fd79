package apply

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// SkipDryRunOnMissingResource defers the dry-run of objects whose kind
	// the cluster does not serve yet (its CRD comes from elsewhere) to their
	// step, instead of failing the sync before anything is written.
	SkipDryRunOnMissingResource bool
	// PrunePropagation is the deletion propagation of prunes and app
	// deletion: PrunePropagationPolicy=foreground|background|orphan
	// (default background).
	PrunePropagation metav1.DeletionPropagation
}

// ParseSyncOptions reads "Key=value" options; unknown keys are ignored (the
// hub warns about them). Options that the agent always behaves as if set
// (ApplyOutOfSyncOnly, ServerSideApply, FailOnSharedResource) and Validate
// (server-side apply always validates against the schema) change nothing.
func ParseSyncOptions(opts []string) SyncOptions {
	o := SyncOptions{PrunePropagation: metav1.DeletePropagationBackground}
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
		case "SkipDryRunOnMissingResource":
			o.SkipDryRunOnMissingResource = v
		case "PrunePropagationPolicy":
			switch _, raw, _ := strings.Cut(kv, "="); strings.ToLower(strings.TrimSpace(raw)) {
			case "foreground":
				o.PrunePropagation = metav1.DeletePropagationForeground
			case "orphan":
				o.PrunePropagation = metav1.DeletePropagationOrphan
			}
		}
	}
	return o
}

// ObjectOptions are the per-object options of the sync-options annotation
// (flotilla.dev/sync-options or argocd.argoproj.io/sync-options), a comma
// separated list such as "Prune=false,Replace=true", and of Argo CD's
// compare-options annotation.
type ObjectOptions struct {
	// NoPrune keeps the object when it leaves the bundle (Prune=false, or
	// Prune=confirm: confirmation is not supported, so it is never pruned).
	NoPrune bool
	// NoDelete keeps the object when its app is deleted (Delete=false, or
	// Delete=confirm).
	NoDelete bool
	// PruneLast prunes this object after all waves (PruneLast=true).
	PruneLast bool
	// Replace and Force as for SyncOptions, for this object only.
	Replace, Force bool
	// SkipDryRunOnMissingResource as for SyncOptions, for this object only.
	SkipDryRunOnMissingResource bool
	// IgnoreExtraneous: when the object is left over (in the cluster, no
	// longer in the bundle) it does not make its app OutOfSync
	// (argocd.argoproj.io/compare-options: IgnoreExtraneous).
	IgnoreExtraneous bool
}

// ArgoCompareOptionsAnnotation is Argo CD's per-object compare options.
const ArgoCompareOptionsAnnotation = "argocd.argoproj.io/compare-options"

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
			_, raw, _ := strings.Cut(kv, "=")
			confirm := strings.EqualFold(strings.TrimSpace(raw), "confirm")
			switch k {
			case "Prune":
				o.NoPrune = !v || confirm
			case "Delete":
				o.NoDelete = !v || confirm
			case "PruneLast":
				o.PruneLast = v
			case "Replace":
				o.Replace = v
			case "Force":
				o.Force = v
			case "SkipDryRunOnMissingResource":
				o.SkipDryRunOnMissingResource = v
			}
		}
	}
	for _, opt := range strings.Split(ann[ArgoCompareOptionsAnnotation], ",") {
		if strings.TrimSpace(opt) == "IgnoreExtraneous" {
			o.IgnoreExtraneous = true
		}
	}
	return o
}

func splitOption(kv string) (string, bool) {
	k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
	return strings.TrimSpace(k), strings.EqualFold(strings.TrimSpace(v), "true")
}
