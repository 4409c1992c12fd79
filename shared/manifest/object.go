package manifest

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Annotations and labels Flotilla reads or writes on managed objects.
const (
	// TrackingAnnotation marks an object as owned by one application:
	// "<app>:<group>/<kind>:<namespace>/<name>".
	TrackingAnnotation = "flotilla.dev/tracking-id"
	// SyncWaveAnnotation orders apply in waves (lowest first).
	SyncWaveAnnotation = "flotilla.dev/sync-wave"
	// ArgoSyncWaveAnnotation is Argo CD's sync-wave annotation, also honoured.
	ArgoSyncWaveAnnotation = "argocd.argoproj.io/sync-wave"
	// SyncOptionsAnnotation holds per-object sync options, e.g. "Prune=false".
	SyncOptionsAnnotation = "flotilla.dev/sync-options"
	// ArgoSyncOptionsAnnotation is Argo CD's per-object sync options annotation.
	ArgoSyncOptionsAnnotation = "argocd.argoproj.io/sync-options"
)

// Key identifies an object within a cluster independent of API version.
type Key struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
}

// KeyOf returns the key of obj. An object without a name (a hook with
// metadata.generateName) is keyed by its generateName: that is its
// identity in a bundle.
func KeyOf(obj *unstructured.Unstructured) Key {
	gvk := obj.GroupVersionKind()
	name := obj.GetName()
	if name == "" {
		name = obj.GetGenerateName()
	}
	return Key{Group: gvk.Group, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: name}
}

// String renders the key as "group/Kind namespace/name", the form used in
// errors and logs ("apps/Deployment web/frontend", "/Namespace /web").
func (k Key) String() string {
	return fmt.Sprintf("%s/%s %s/%s", k.Group, k.Kind, k.Namespace, k.Name)
}

// Less orders keys by group, kind, namespace and name.
func (k Key) Less(o Key) bool {
	if k.Group != o.Group {
		return k.Group < o.Group
	}
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

// TrackingID returns the value of TrackingAnnotation for key in app.
func TrackingID(app string, k Key) string {
	return fmt.Sprintf("%s:%s/%s:%s/%s", app, k.Group, k.Kind, k.Namespace, k.Name)
}

// ParseTrackingID splits a tracking id into its app and key. ok is false when
// id is not of the form TrackingID produces.
func ParseTrackingID(id string) (app string, k Key, ok bool) {
	app, rest, ok := strings.Cut(id, ":")
	if !ok {
		return "", Key{}, false
	}
	gk, nn, ok := strings.Cut(rest, ":")
	if !ok {
		return "", Key{}, false
	}
	g, kind, ok1 := strings.Cut(gk, "/")
	ns, name, ok2 := strings.Cut(nn, "/")
	if !ok1 || !ok2 || kind == "" || name == "" {
		return "", Key{}, false
	}
	return app, Key{Group: g, Kind: kind, Namespace: ns, Name: name}, true
}

// GroupKind returns the key's schema.GroupKind.
func (k Key) GroupKind() schema.GroupKind { return schema.GroupKind{Group: k.Group, Kind: k.Kind} }
