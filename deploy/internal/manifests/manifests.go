// Package manifests renders the install manifests under deploy/ (kustomize
// bases and overlays, the Helm chart, plain YAML) into objects, the way
// `kubectl apply -k`, `helm template` and `kubectl apply -f` would see them.
package manifests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Kustomize builds the kustomization in dir with kustomize's default
// options (as kubectl apply -k does) and returns its objects in output
// order.
func Kustomize(dir string) ([]*unstructured.Unstructured, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	y, err := rm.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return Parse(dir, y)
}

// HelmOptions name the release a chart is rendered for.
type HelmOptions struct {
	// Release is the release name (default "flotilla").
	Release string
	// Namespace is the release namespace (default "flotilla-system").
	Namespace string
	// Values override the chart's values.yaml.
	Values map[string]any
}

// Helm renders the chart in dir as `helm template` does (client only, no
// cluster), returning the manifest's objects sorted by template file.
func Helm(ctx context.Context, dir string, o HelmOptions) ([]*unstructured.Unstructured, error) {
	if o.Release == "" {
		o.Release = "flotilla"
	}
	if o.Namespace == "" {
		o.Namespace = "flotilla-system"
	}
	chrt, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", dir, err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.ReleaseName = o.Release
	install.Namespace = o.Namespace
	vals := o.Values
	if vals == nil {
		vals = map[string]any{}
	}
	rel, err := install.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: release %s: %w", dir, o.Release, err)
	}
	return Parse(dir, []byte(rel.Manifest))
}

// File reads the objects of a YAML file.
func File(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(filepath.Base(path), data)
}

// Parse decodes a multi-document YAML stream; origin names it in errors.
func Parse(origin string, data []byte) ([]*unstructured.Unstructured, error) {
	return manifest.Parse(origin, data)
}

// Namespaces returns, sorted, every namespace the objects need: the names of
// Namespace objects and the namespaces of namespaced objects.
func Namespaces(objs []*unstructured.Unstructured) []string {
	set := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			set[o.GetName()] = true
		}
		if ns := o.GetNamespace(); ns != "" {
			set[ns] = true
		}
	}
	out := make([]string, 0, len(set))
	for ns := range set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// Find returns the object of the given kind and name (any namespace), or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}
