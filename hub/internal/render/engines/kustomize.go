package engines

import (
	"context"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"path"
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
// loads restricted to each kustomization's root, no remote bases or files
// (checkRemote refuses them before kustomize runs), and every file read
// through the repository root (rootFS), or the checkouts of remote bases
// mounted beside it when in.RemoteBases allows (see remoteState).
// helmCharts are inflated first when in.KustomizeHelm allows (see
// inflate). The application's kustomize
// settings are applied to the kustomization (in memory) then.
func renderKustomize(ctx context.Context, root *render.Root, dir string, in render.Input) ([]render.Origined, error) {
	k := in.Source.Kustomize
	file := render.KustomizationFile(root, dir)
	if file == "" {
		return nil, fmt.Errorf("kustomize %s: no kustomization.yaml, kustomization.yml or Kustomization", dir)
	}
	fsys := newRootFS(root)
	fsys.helm = &kzHelm{ctx: ctx, opts: in.KustomizeHelm, caps: in.Capabilities}
	if in.RemoteBases != nil {
		rs := fsys.withRemotes(checkoutLookup(in.RemoteBases), false)
		defer rs.Close()
	}
	if err := prepareKustomization(fsys, dir, file, k); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	kustomizeMu.Lock()
	rm, err := krusty.MakeKustomizer(opts).Run(fsys, root.Abs(dir))
	kustomizeMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	origin := "kustomize build " + dir
	out := make([]render.Origined, 0, rm.Size())
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", origin, r.CurId(), err)
		}
		out = append(out, render.Origined{Obj: &unstructured.Unstructured{Object: m}, Origin: origin})
	}
	return out, nil
}

// prepareKustomization checks the kustomization file in dir and every
// kustomization it is built from (see checkRemote), applies the
// application's kustomize settings k to it in memory, and rewrites remote
// bases to their mounts.
func prepareKustomization(fsys *rootFS, dir, file string, k *app.Kustomize) error {
	if err := checkRemote(fsys, dir, map[string]bool{}); err != nil {
		return fmt.Errorf("kustomize %s: %w", dir, err)
	}
	if k != nil {
		real, err := fsys.root.Resolve(file)
		if err != nil {
			return fmt.Errorf("kustomize %s: %w", dir, err)
		}
		data, err := fsys.ReadFile(real) // with its helmCharts inflated
		if err != nil {
			return fmt.Errorf("kustomize %s: %w", dir, err)
		}
		edited, err := editKustomization(data, k)
		if err != nil {
			return fmt.Errorf("kustomize %s: %s: %w", dir, path.Base(file), err)
		}
		// The edit may only add local components and patches: check the
		// result as kustomize will read it.
		if err := checkKustomization(fsys, dir, file, edited, map[string]bool{fsys.root.Abs(dir): true}); err != nil {
			return fmt.Errorf("kustomize %s: %w", dir, err)
		}
		fsys.overrides[real] = edited
	}
	if fsys.remote != nil {
		if err := fsys.remote.applyRewrites(); err != nil {
			return fmt.Errorf("kustomize %s: %w", dir, err)
		}
	}
	return nil
}

// KustomizeRemoteBases returns the remote bases the kustomization of src,
// checked out at root, is built from, nested ones included, in the order
// met, calling lookup for each (it returns the base's checkout, whose
// kustomizations are read in turn, or an error that ends the walk; the
// bases met so far come back with it). Nothing is rendered (helmCharts are
// not inflated). A source that is not a kustomization has none.
func KustomizeRemoteBases(root string, src app.Source, lookup func(render.RemoteBase) (string, error)) ([]render.RemoteBase, error) {
	r, err := render.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	dir, err := r.Dir(src.Path)
	if err != nil || render.Detect(r, dir, src) != render.KindKustomize {
		return nil, nil
	}
	file := render.KustomizationFile(r, dir)
	if file == "" {
		return nil, nil
	}
	fsys := newRootFS(r)
	rs := fsys.withRemotes(lookup, true)
	defer rs.Close()
	err = prepareKustomization(fsys, dir, file, src.Kustomize)
	return rs.bases, err
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
