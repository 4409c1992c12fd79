package render

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// kustomizeMu serialises kustomize builds: kustomize keeps global OpenAPI
// state that is not safe for concurrent builds (Flux does the same).
var kustomizeMu sync.Mutex

// renderKustomize builds the kustomization in dir with plugins disabled,
// loads restricted to each kustomization's root, no remote bases or files,
// and no file outside the repository. The application's kustomize settings
// are applied to the kustomization (in memory) first.
func renderKustomize(root repoRoot, dir string, k *app.Kustomize) ([]origined, error) {
	rel := root.rel(dir)
	file := kustomizationFile(dir)
	if file == "" {
		return nil, fmt.Errorf("kustomize %s: no kustomization.yaml, kustomization.yml or Kustomization", rel)
	}
	fsys := newRootFS(root)
	if err := checkRemote(fsys, dir, map[string]bool{}); err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", rel, err)
	}
	if k != nil {
		data, err := fsys.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %w", rel, err)
		}
		edited, err := editKustomization(data, k)
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", rel, filepath.Base(file), err)
		}
		fsys.overrides[file] = edited
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	kustomizeMu.Lock()
	rm, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	kustomizeMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", rel, err)
	}
	origin := "kustomize build " + rel
	out := make([]origined, 0, rm.Size())
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", origin, r.CurId(), err)
		}
		out = append(out, origined{obj: &unstructured.Unstructured{Object: m}, origin: origin})
	}
	return out, nil
}

// checkRemote refuses remote bases, components and files in the
// kustomization at dir and in every local one it refers to.
func checkRemote(fsys *rootFS, dir string, seen map[string]bool) error {
	if seen[dir] {
		return nil
	}
	seen[dir] = true
	file := kustomizationFile(dir)
	if file == "" {
		return nil
	}
	data, err := fsys.ReadFile(file)
	if err != nil {
		return err
	}
	var kz types.Kustomization
	if err := yaml.Unmarshal(data, &kz); err != nil {
		return fmt.Errorf("%s: %w", fsys.root.rel(file), err)
	}
	refs := map[string][]string{
		"resources": kz.Resources, "bases": kz.Bases, "components": kz.Components, "crds": kz.Crds,
		"generators": kz.Generators, "transformers": kz.Transformers, "validators": kz.Validators,
		"configurations": kz.Configurations,
	}
	for i, p := range kz.Patches {
		refs[fmt.Sprintf("patches[%d].path", i)] = []string{p.Path}
	}
	for i, p := range kz.PatchesJson6902 {
		refs[fmt.Sprintf("patchesJson6902[%d].path", i)] = []string{p.Path}
	}
	for i, p := range kz.Replacements {
		refs[fmt.Sprintf("replacements[%d].path", i)] = []string{p.Path}
	}
	if p, ok := kz.OpenAPI["path"]; ok {
		refs["openapi.path"] = []string{p}
	}
	if len(kz.HelmCharts) > 0 || len(kz.HelmChartInflationGenerator) > 0 {
		return fmt.Errorf("%s: helmCharts: Helm inflation in kustomize is not supported; use a Helm source", fsys.root.rel(file))
	}
	for field, list := range refs {
		for _, ref := range list {
			if ref == "" {
				continue
			}
			if isRemote(ref) {
				return fmt.Errorf("%s: %s: remote reference %q is not supported; keep bases in the repository", fsys.root.rel(file), field, ref)
			}
			if field == "resources" || field == "bases" || field == "components" {
				sub := filepath.Join(dir, filepath.FromSlash(ref))
				real, err := fsys.root.resolve(sub)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", fsys.root.rel(file), field, err)
				}
				if fsys.disk.IsDir(real) {
					if err := checkRemote(fsys, real, seen); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// isRemote reports whether a kustomize reference would be fetched: a URL,
// or a git repository in one of kustomize's short forms.
func isRemote(ref string) bool {
	if u, err := url.Parse(ref); err == nil && u.Scheme != "" && u.Scheme != "file" {
		return true
	}
	for _, p := range []string{"github.com/", "gitlab.com/", "bitbucket.org/", "git@", "git::", "ssh:"} {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return strings.Contains(ref, ".git//") || strings.Contains(ref, "?ref=") || strings.HasSuffix(ref, ".git")
}

// editKustomization applies k as Argo CD's `kustomize edit` commands do.
func editKustomization(data []byte, k *app.Kustomize) ([]byte, error) {
	var kz types.Kustomization
	if err := yaml.Unmarshal(data, &kz); err != nil {
		return nil, err
	}
	if k.NamePrefix != "" {
		kz.NamePrefix = k.NamePrefix
	}
	if k.NameSuffix != "" {
		kz.NameSuffix = k.NameSuffix
	}
	if k.Namespace != "" {
		kz.Namespace = k.Namespace
	}
	for _, s := range k.Images {
		img, err := parseImage(s)
		if err != nil {
			return nil, err
		}
		kz.Images = upsert(kz.Images, img, func(i types.Image) string { return i.Name })
	}
	for _, r := range k.Replicas {
		kz.Replicas = upsert(kz.Replicas, types.Replica{Name: r.Name, Count: r.Count}, func(r types.Replica) string { return r.Name })
	}
	if len(k.CommonLabels) > 0 {
		// commonLabels semantics (selectors too) without kustomize's
		// deprecation warning for commonLabels.
		kz.Labels = append(kz.Labels, types.Label{Pairs: k.CommonLabels, IncludeSelectors: true})
	}
	if len(k.CommonAnnotations) > 0 && kz.CommonAnnotations == nil {
		kz.CommonAnnotations = map[string]string{}
	}
	for key, v := range k.CommonAnnotations {
		kz.CommonAnnotations[key] = v
	}
	for _, p := range k.Patches {
		tp := types.Patch{Path: p.Path, Patch: p.Patch}
		if len(p.Options) > 0 {
			tp.Options = &types.PatchArgs{AllowNameChange: p.Options["allowNameChange"], AllowKindChange: p.Options["allowKindChange"]}
		}
		if t := p.Target; t != nil {
			tp.Target = &types.Selector{
				ResId:              resid.ResId{Gvk: resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind}, Name: t.Name, Namespace: t.Namespace},
				LabelSelector:      t.LabelSelector,
				AnnotationSelector: t.AnnotationSelector,
			}
		}
		kz.Patches = append(kz.Patches, tp)
	}
	kz.Components = append(kz.Components, k.Components...)
	return yaml.Marshal(&kz)
}

func upsert[T any](list []T, v T, key func(T) string) []T {
	for i := range list {
		if key(list[i]) == key(v) {
			list[i] = v
			return list
		}
	}
	return append(list, v)
}

// parseImage parses `kustomize edit set image` arguments:
// [old=]new[:tag][@digest].
func parseImage(s string) (types.Image, error) {
	old, img, hasOld := strings.Cut(s, "=")
	if !hasOld {
		img = old
	}
	name, digest, _ := strings.Cut(img, "@")
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	if name == "" {
		return types.Image{}, fmt.Errorf("image %q: no name", s)
	}
	out := types.Image{Name: name, NewTag: tag, Digest: digest}
	if hasOld {
		out.Name = old
		if old != name {
			out.NewName = name
		}
	}
	return out, nil
}
