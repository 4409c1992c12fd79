package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// isDefinition reports whether obj is an Application, ApplicationSet or
// project, Argo CD's or Flotilla's: an app that renders one (Argo CD's
// app-of-apps) defines it on the hub, it does not send it to a cluster
// (which has no such kind).
func isDefinition(obj *unstructured.Unstructured) bool {
	switch obj.GetAPIVersion() {
	case app.ArgoAPIVersion:
		return obj.GetKind() == app.KindApp || obj.GetKind() == app.KindAppSet || obj.GetKind() == app.KindAppProject
	case app.APIVersion:
		return obj.GetKind() == app.KindApp || obj.GetKind() == app.KindProject
	}
	return false
}

// splitChildren separates the definitions among objs (a cached render's
// slice, left as it is) from the objects for the cluster.
func splitChildren(objs []*unstructured.Unstructured) (rest, children []*unstructured.Unstructured) {
	if !slices.ContainsFunc(objs, isDefinition) {
		return objs, nil
	}
	rest = make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if isDefinition(o) {
			children = append(children, o)
		} else {
			rest = append(rest, o)
		}
	}
	return rest, children
}

// childDefinitions decodes what parents rendered (parent → objects) into
// definitions, each carrying its parent. A child whose name is already
// taken (by an app of the definitions folder or repo, or by an earlier
// parent's child, which also stops a parent defining itself or a cycle) is
// broken, named as the child of its parent so that the app holding the
// name is left alone.
func childDefinitions(rendered map[string][]*unstructured.Unstructured, taken map[string]string) app.Definitions {
	var out app.Definitions
	taken = maps.Clone(taken)
	for _, parent := range slices.Sorted(maps.Keys(rendered)) {
		for _, obj := range rendered[parent] {
			file := fmt.Sprintf("app %s (rendered %s %s)", parent, obj.GetKind(), obj.GetName())
			js, err := json.Marshal(obj.Object)
			if err != nil {
				continue
			}
			defs, _ := app.Decode(file, js)
			for _, a := range defs.Apps {
				if prev, ok := taken[a.Name]; ok {
					out.Broken = append(out.Broken, app.Broken{Kind: "child " + app.KindApp, Name: a.Name, File: file,
						Error: fmt.Sprintf("%s: Application %s is already defined in %s; the child is not used", file, a.Name, prev)})
					continue
				}
				taken[a.Name] = file
				a.Parent = parent
				out.Apps = append(out.Apps, a)
			}
			out.Projects = append(out.Projects, defs.Projects...)
			for _, s := range defs.AppSets {
				s.Parent = parent
				out.AppSets = append(out.AppSets, s)
			}
			out.Warnings = append(out.Warnings, defs.Warnings...)
			out.Broken = append(out.Broken, defs.Broken...)
		}
	}
	return out
}
