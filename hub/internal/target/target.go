package target

import (
	"errors"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// Cluster is a cluster as targeting sees it: a name and labels. It is the
// same type as app.Cluster, so it can be passed to app.AppSet.Expand.
type Cluster = app.Cluster

// ErrTemplate is wrapped by errors from templating a source for a cluster.
var ErrTemplate = errors.New("template")

// Targets reports whether a sends to c: c is named in
// spec.destination.clusters, or its labels match
// spec.destination.clusterSelector. A nil selector matches nothing; an
// empty one ({}) matches every cluster, as label selectors do in
// Kubernetes. An invalid selector matches nothing (app.Validate refuses
// it).
func Targets(a *app.Application, c Cluster) bool {
	d := a.Spec.Destination
	return matches(d.Clusters, d.ClusterSelector, c)
}

// Clusters returns the clusters a targets, in the order given.
func Clusters(a *app.Application, clusters []Cluster) []Cluster {
	var out []Cluster
	for _, c := range clusters {
		if Targets(a, c) {
			out = append(out, c)
		}
	}
	return out
}

func matches(names []string, sel *metav1.LabelSelector, c Cluster) bool {
	if slices.Contains(names, c.Name) {
		return true
	}
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(c.Labels))
}

// Override returns the index of the first cluster override matching c, or
// -1.
func Override(a *app.Application, c Cluster) int {
	for i, o := range a.Spec.ClusterOverrides {
		if matches(o.Clusters, o.ClusterSelector, c) {
			return i
		}
	}
	return -1
}

// Effective returns the source that cluster c gets from a. The first
// matching clusterOverride is merged over spec.source: path, targetRevision
// and directory replace; for Helm, valueFiles and parameters are appended,
// values (and valuesObject) are deep-merged as YAML over the source's, and
// releaseName and namespace replace; for Kustomize, namePrefix, nameSuffix
// and namespace replace, images, replicas, patches and components are
// appended and labels and annotations merged.
//
// Before merging, the path, Helm valueFiles, values, valuesObject strings,
// releaseName and parameter values, and the Kustomize strings are executed
// as Go text/templates with {{ .cluster.name }} and
// {{ .cluster.labels.<key> }}. A missing key is an error wrapping
// ErrTemplate and naming the application, the cluster, the field and the
// key. The templated path must stay inside the repository.
func Effective(a *app.Application, c Cluster) (app.Source, error) {
	t := templater{data: map[string]any{"cluster": map[string]any{"name": c.Name, "labels": nonNil(c.Labels)}}}
	src := cloneSource(a.Spec.Source)
	t.source("spec.source", &src)
	if i := Override(a, c); i >= 0 {
		o := a.Spec.ClusterOverrides[i]
		f := fmt.Sprintf("spec.clusterOverrides[%d]", i)
		ov := app.Source{Path: o.Path, TargetRevision: o.TargetRevision, Directory: o.Directory, Helm: o.Helm, Kustomize: o.Kustomize}
		ov = cloneSource(ov)
		t.source(f, &ov)
		if t.err == nil {
			if err := merge(&src, ov); err != nil {
				t.err = fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	if t.err == nil {
		if err := app.ValidatePath(src.Path); err != nil {
			t.err = fmt.Errorf("path: %w", err)
		}
	}
	if t.err != nil {
		return app.Source{}, fmt.Errorf("app %s: cluster %s: %w", a.Name, c.Name, t.err)
	}
	return src, nil
}

// EffectiveSources returns what a renders for cluster c: its sources with
// their templates executed for c (Effective's one source for a
// single-source app; cluster overrides are refused with spec.sources).
func EffectiveSources(a *app.Application, c Cluster) ([]app.Source, error) {
	if len(a.Spec.Sources) == 0 {
		src, err := Effective(a, c)
		if err != nil {
			return nil, err
		}
		return []app.Source{src}, nil
	}
	t := templater{data: map[string]any{"cluster": map[string]any{"name": c.Name, "labels": nonNil(c.Labels)}}}
	out := make([]app.Source, len(a.Spec.Sources))
	for i, s := range a.Spec.Sources {
		f := fmt.Sprintf("spec.sources[%d]", i)
		src := cloneSource(s)
		t.source(f, &src)
		if t.err == nil {
			if err := app.ValidatePath(src.Path); err != nil {
				t.err = fmt.Errorf("%s.path: %w", f, err)
			}
		}
		if t.err != nil {
			return nil, fmt.Errorf("app %s: cluster %s: %w", a.Name, c.Name, t.err)
		}
		out[i] = src
	}
	return out, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
