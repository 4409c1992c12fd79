package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// takenOver says whether the agent takes back the fields that field manager
// m holds on an object it applies: the managers of people and of other
// deployment tools (kubectl in all its forms, client-side apply's
// before-first-apply, Argo CD's controller, Helm). Controllers that own
// fields for a reason (the HPA's replicas, a status) are left alone, as are
// entries of subresources.
func takenOver(m string) bool {
	switch m {
	case "before-first-apply", "argocd-controller", "argocd-application-controller", "helm":
		return true
	}
	return strings.HasPrefix(m, "kubectl")
}

// ForeignManagers returns the field managers of obj whose fields the agent
// takes over before it applies (see takenOver), sorted; none when only the
// agent and controllers manage it. The watch cache keeps each entry's
// manager, operation and subresource, so this needs no request.
func (a *Applier) ForeignManagers(obj *unstructured.Unstructured) []string {
	var out []string
	for _, e := range obj.GetManagedFields() {
		if e.Subresource != "" || e.Manager == a.fieldManager || !takenOver(e.Manager) {
			continue
		}
		if !slices.Contains(out, e.Manager) {
			out = append(out, e.Manager)
		}
	}
	slices.Sort(out)
	return out
}

// TakeOver makes the agent's field manager the owner of every field that
// the foreign managers of the live object (ForeignManagers) hold, as Flux
// does before applying: their managedFields entries are merged into the
// agent's apply entry (client-go's csaupgrade) and removed, in one patch
// conditional on the object's resourceVersion. The next apply then removes
// what the bundle no longer sets, and list entries another manager added
// (a `kubectl patch` of a Service port) go instead of clashing with the
// bundle's. It reads the object from the API server (the watch cache keeps
// no field sets) and reports whether it patched.
func (a *Applier) TakeOver(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (bool, error) {
	key := manifest.Key{Group: gvk.Group, Kind: gvk.Kind, Namespace: namespace, Name: name}
	ri, _, err := a.Resource(gvk, namespace)
	if err != nil {
		return false, fmt.Errorf("take over fields of %s: %w", key, err)
	}
	live, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("take over fields of %s: %w", key, err)
	}
	foreign := a.ForeignManagers(live)
	if len(foreign) == 0 {
		return false, nil
	}
	// csaupgrade merges Update entries; foreign Apply entries (Argo CD's
	// or kubectl's server-side apply) are merged the same way.
	entries := live.GetManagedFields()
	for i := range entries {
		if slices.Contains(foreign, entries[i].Manager) && entries[i].Subresource == "" {
			entries[i].Operation = metav1.ManagedFieldsOperationUpdate
		}
	}
	live.SetManagedFields(entries)
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(foreign...), a.fieldManager)
	if err != nil || patch == nil {
		return false, err
	}
	if _, err := ri.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("take over fields of %s from %s: %w", key, strings.Join(foreign, ", "), err)
	}
	return true, nil
}
