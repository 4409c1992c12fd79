package target

import (
	"fmt"
	"maps"
	"slices"

	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// cloneSource copies s deeply enough that templating and merging never
// write to the application.
func cloneSource(s app.Source) app.Source {
	if s.Directory != nil {
		d := *s.Directory
		s.Directory = &d
	}
	if s.Helm != nil {
		h := *s.Helm
		h.ValueFiles = slices.Clone(h.ValueFiles)
		h.Parameters = slices.Clone(h.Parameters)
		if h.ValuesObject != nil {
			h.ValuesObject = deepCopyMap(h.ValuesObject)
		}
		s.Helm = &h
	}
	if s.Kustomize != nil {
		k := *s.Kustomize
		k.Images = slices.Clone(k.Images)
		k.CommonLabels = maps.Clone(k.CommonLabels)
		k.CommonAnnotations = maps.Clone(k.CommonAnnotations)
		k.Replicas = slices.Clone(k.Replicas)
		k.Patches = slices.Clone(k.Patches)
		k.Components = slices.Clone(k.Components)
		s.Kustomize = &k
	}
	return s
}

// merge merges override o over s (both already templated).
func merge(s *app.Source, o app.Source) error {
	if o.Path != "" {
		s.Path = o.Path
	}
	if o.TargetRevision != "" {
		s.TargetRevision = o.TargetRevision
	}
	if o.Directory != nil {
		s.Directory = o.Directory
	}
	if o.Helm != nil {
		if s.Helm == nil {
			s.Helm = o.Helm
		} else if err := mergeHelm(s.Helm, o.Helm); err != nil {
			return err
		}
	}
	if o.Kustomize != nil {
		if s.Kustomize == nil {
			s.Kustomize = o.Kustomize
		} else {
			mergeKustomize(s.Kustomize, o.Kustomize)
		}
	}
	return nil
}

func mergeHelm(h, o *app.Helm) error {
	h.ValueFiles = append(h.ValueFiles, o.ValueFiles...)
	h.Parameters = append(h.Parameters, o.Parameters...)
	if o.ReleaseName != "" {
		h.ReleaseName = o.ReleaseName
	}
	if o.Namespace != "" {
		h.Namespace = o.Namespace
	}
	h.SkipCRDs = h.SkipCRDs || o.SkipCRDs
	if o.KubeVersion != "" {
		h.KubeVersion = o.KubeVersion
	}
	if len(o.APIVersions) > 0 {
		h.APIVersions = o.APIVersions // a list replaces, as in Argo CD
	}
	switch {
	case o.Values == "":
	case h.Values == "":
		h.Values = o.Values
	default:
		var base, over map[string]any
		if err := yaml.Unmarshal([]byte(h.Values), &base); err != nil {
			return fmt.Errorf("helm.values of spec.source: %w", err)
		}
		if err := yaml.Unmarshal([]byte(o.Values), &over); err != nil {
			return fmt.Errorf("helm.values: %w", err)
		}
		out, err := yaml.Marshal(MergeValues(base, over))
		if err != nil {
			return fmt.Errorf("helm.values: %w", err)
		}
		h.Values = string(out)
	}
	if o.ValuesObject != nil {
		h.ValuesObject = MergeValues(h.ValuesObject, o.ValuesObject)
	}
	return nil
}

// MergeValues deep-merges over into base as Helm merges values: maps merge
// key by key, anything else in over replaces. base is modified and
// returned (a new map when base is nil).
func MergeValues(base, over map[string]any) map[string]any {
	if base == nil {
		base = map[string]any{}
	}
	for k, v := range over {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				base[k] = MergeValues(bm, om)
				continue
			}
		}
		base[k] = v
	}
	return base
}

func mergeKustomize(k, o *app.Kustomize) {
	if o.NamePrefix != "" {
		k.NamePrefix = o.NamePrefix
	}
	if o.NameSuffix != "" {
		k.NameSuffix = o.NameSuffix
	}
	if o.Namespace != "" {
		k.Namespace = o.Namespace
	}
	k.Images = append(k.Images, o.Images...)
	k.Replicas = append(k.Replicas, o.Replicas...)
	k.Patches = append(k.Patches, o.Patches...)
	k.Components = append(k.Components, o.Components...)
	if len(o.CommonLabels) > 0 {
		if k.CommonLabels == nil {
			k.CommonLabels = map[string]string{}
		}
		maps.Copy(k.CommonLabels, o.CommonLabels)
	}
	if len(o.CommonAnnotations) > 0 {
		if k.CommonAnnotations == nil {
			k.CommonAnnotations = map[string]string{}
		}
		maps.Copy(k.CommonAnnotations, o.CommonAnnotations)
	}
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return deepCopyMap(x)
	case []any:
		s := make([]any, len(x))
		for i, item := range x {
			s[i] = deepCopyValue(item)
		}
		return s
	}
	return v
}
