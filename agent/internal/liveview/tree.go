package liveview

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/health"
	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// childKinds are the kinds looked for below the app's objects, in an order
// where an owner comes before what it owns (a CronJob's Job before the
// Job's Pods), so one pass finds every level.
var childKinds = []schema.GroupVersionResource{
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "", Version: "v1", Resource: "pods"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
}

// node is one object of a tree.
type node struct {
	ref     *apiv1alpha1.ObjectRef
	obj     *unstructured.Unstructured // nil: an inventory object not found live
	inApp   bool
	tracked bool // inApp and the live object carries the app's tracking id
	parents []string
}

// appTree is an app's objects and what they own.
type appTree struct {
	app   string
	nodes []*node
	byUID map[types.UID]*node
}

func refOf(o *unstructured.Unstructured) *apiv1alpha1.ObjectRef {
	gvk := o.GroupVersionKind()
	return &apiv1alpha1.ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// sameObject compares group, kind, namespace and name (not the version).
func sameObject(a, b *apiv1alpha1.ObjectRef) bool {
	return a.GetGroup() == b.GetGroup() && a.GetKind() == b.GetKind() && a.GetNamespace() == b.GetNamespace() && a.GetName() == b.GetName()
}

// sameKindName compares group, kind and name.
func sameKindName(a, b *apiv1alpha1.ObjectRef) bool {
	return a.GetGroup() == b.GetGroup() && a.GetKind() == b.GetKind() && a.GetName() == b.GetName()
}

// find returns the tree's node for ref, nil when the tree has none. A ref
// without a namespace matches an object of any namespace, when only one
// does.
func (t *appTree) find(ref *apiv1alpha1.ObjectRef) (*node, error) {
	var found *node
	for _, n := range t.nodes {
		if !sameObject(n.ref, ref) && (ref.GetNamespace() != "" || !sameKindName(n.ref, ref)) {
			continue
		}
		if found != nil {
			return nil, invalid("%s names objects in namespaces %s and %s: give the namespace", describe(ref), found.ref.GetNamespace(), n.ref.GetNamespace())
		}
		found = n
	}
	return found, nil
}

// descendants returns n and every node it owns, transitively.
func (t *appTree) descendants(n *node) []*node {
	out := []*node{n}
	if n.obj == nil {
		return out
	}
	seen := map[types.UID]bool{n.obj.GetUID(): true}
	for i := 0; i < len(out); i++ {
		uid := ""
		if out[i].obj != nil {
			uid = string(out[i].obj.GetUID())
		}
		for _, c := range t.nodes {
			if c.obj == nil || seen[c.obj.GetUID()] {
				continue
			}
			for _, p := range c.parents {
				if p == uid {
					seen[c.obj.GetUID()] = true
					out = append(out, c)
					break
				}
			}
		}
	}
	return out
}

// load reads the live tree of app: its inventory's objects (one list per
// resource and namespace, by the agent's managed label) and the Jobs,
// ReplicaSets, Pods and EndpointSlices they own, in their namespaces.
func (s *Server) load(ctx context.Context, app string) (*appTree, error) {
	entries, ok := s.inv.Owned(app)
	if !ok {
		return nil, notFound("application %q is not held by this agent", app)
	}
	t := &appTree{app: app, byUID: map[types.UID]*node{}}
	type listKey struct {
		gvr schema.GroupVersionResource
		ns  string
	}
	groups := map[listKey][]inventory.Entry{}
	var keys []listKey
	namespaces := map[string]bool{}
	for _, e := range entries {
		ref := &apiv1alpha1.ObjectRef{Group: e.Group, Version: e.Version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
		m, err := s.mapper.Mapping(e.GVK())
		if err != nil {
			t.nodes = append(t.nodes, &node{ref: ref, inApp: true})
			continue
		}
		ns := ""
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns = e.Namespace
			namespaces[ns] = true
		}
		k := listKey{m.Resource, ns}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], e)
	}
	for _, k := range keys {
		list, err := s.dyn.Resource(k.gvr).Namespace(k.ns).List(ctx, metav1.ListOptions{LabelSelector: apply.ManagedSelector})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("list %s in namespace %q: %w", k.gvr, k.ns, err)
		}
		live := map[string]*unstructured.Unstructured{}
		if list != nil {
			for i := range list.Items {
				live[list.Items[i].GetName()] = &list.Items[i]
			}
		}
		for _, e := range groups[k] {
			n := &node{ref: &apiv1alpha1.ObjectRef{Group: e.Group, Version: e.Version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}, inApp: true}
			if o := live[e.Name]; o != nil {
				n.obj = o
				n.tracked = o.GetAnnotations()[manifest.TrackingAnnotation] == manifest.TrackingID(app, manifest.KeyOf(o))
				t.byUID[o.GetUID()] = n
			}
			t.nodes = append(t.nodes, n)
		}
	}
	nsList := make([]string, 0, len(namespaces))
	for ns := range namespaces {
		nsList = append(nsList, ns)
	}
	sort.Strings(nsList)
	for _, gvr := range childKinds {
		for _, ns := range nsList {
			list, err := s.dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				continue // not served, or not readable by this agent
			}
			if err != nil {
				return nil, fmt.Errorf("list %s in namespace %s: %w", gvr, ns, err)
			}
			for i := range list.Items {
				o := &list.Items[i]
				if t.byUID[o.GetUID()] != nil {
					continue
				}
				var parents []string
				for _, or := range o.GetOwnerReferences() {
					if t.byUID[or.UID] != nil {
						parents = append(parents, string(or.UID))
					}
				}
				if len(parents) == 0 {
					continue
				}
				n := &node{ref: refOf(o), obj: o, parents: parents}
				t.byUID[o.GetUID()] = n
				t.nodes = append(t.nodes, n)
			}
		}
	}
	return t, nil
}

// tree answers TREE: every node with its health.
func (s *Server) tree(ctx context.Context, app string) (*apiv1alpha1.LiveResponse, error) {
	t, err := s.load(ctx, app)
	if err != nil {
		return nil, err
	}
	res := &apiv1alpha1.LiveResponse{Nodes: make([]*apiv1alpha1.LiveNode, 0, len(t.nodes))}
	for _, n := range t.nodes {
		h := health.Of(n.obj)
		ln := &apiv1alpha1.LiveNode{Ref: n.ref, ParentUids: n.parents, Health: h.Status, Message: h.Message, InApp: n.inApp}
		if n.obj != nil {
			ln.Uid = string(n.obj.GetUID())
			ln.Created = timestamppb.New(n.obj.GetCreationTimestamp().Time)
			if n.ref.GetGroup() == "" && n.ref.GetKind() == "Pod" {
				ln.Containers = containers(n.obj)
			}
		}
		res.Nodes = append(res.Nodes, ln)
	}
	return res, nil
}

// containers names a Pod's containers (init containers last).
func containers(pod *unstructured.Unstructured) []string {
	var out []string
	for _, field := range []string{"containers", "initContainers"} {
		cs, _, _ := unstructured.NestedSlice(pod.Object, "spec", field)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				if name, ok := m["name"].(string); ok {
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// lookup finds ref in app's tree: the object must be the app's or owned by
// one of its objects.
func (s *Server) lookup(ctx context.Context, app string, ref *apiv1alpha1.ObjectRef) (*appTree, *node, error) {
	if ref.GetKind() == "" || ref.GetName() == "" {
		return nil, nil, invalid("the request names no object (kind and name are needed)")
	}
	t, err := s.load(ctx, app)
	if err != nil {
		return nil, nil, err
	}
	n, err := t.find(ref)
	if err != nil {
		return nil, nil, err
	}
	if n == nil {
		return nil, nil, notOwned("%s is neither an object of application %q nor owned by one", describe(ref), app)
	}
	if n.obj == nil {
		return nil, nil, notFound("%s of application %q does not exist in the cluster", describe(ref), app)
	}
	return t, n, nil
}

// describe names ref as kubectl would: kind[.group] namespace/name.
func describe(ref *apiv1alpha1.ObjectRef) string {
	k := ref.GetKind()
	if ref.GetGroup() != "" {
		k += "." + ref.GetGroup()
	}
	if ref.GetNamespace() != "" {
		return fmt.Sprintf("%s %s/%s", k, ref.GetNamespace(), ref.GetName())
	}
	return k + " " + ref.GetName()
}
