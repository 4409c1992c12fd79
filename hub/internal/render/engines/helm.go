package engines

import (
	"context"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// renderHelm renders the chart in dir as `helm template` does (client only,
// CRDs included unless skipCrds), with Helm hooks mapped to Argo CD hooks
// as Argo CD maps them (see helmHook). Values are merged in this order, later wins: the chart's
// values.yaml, helm.valueFiles (relative to the chart folder, inside the
// repository), helm.values, helm.valuesObject, helm.parameters. The release
// name defaults to the application name; the namespace to the destination
// namespace. Chart dependencies must be vendored in charts/.
//
// Every file is read through the repository root (see readChart).
func renderHelm(ctx context.Context, root *render.Root, dir string, in render.Input) ([]render.Origined, error) {
	h := in.Source.Helm
	if h == nil {
		h = &app.Helm{}
	}
	chartRel := dir
	if !root.IsFile(path.Join(dir, "Chart.yaml")) {
		return nil, fmt.Errorf("helm chart %s: no Chart.yaml (missing chart)", chartRel)
	}
	chrt, err := readChart(root, dir)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}
	if err := checkDependencies(chrt); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w (vendor dependencies into charts/)", chartRel, err)
	}
	vals, err := helmValues(root, dir, h, in.Refs)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}

	caps, err := overrideCapabilities(in.Capabilities, h)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}
	opts := templateOptions{ReleaseName: h.ReleaseName, Namespace: h.Namespace, IncludeCRDs: !h.SkipCRDs, Capabilities: caps, KubeVersionOverride: h.KubeVersion != ""}
	if opts.ReleaseName == "" {
		opts.ReleaseName = in.AppName
	}
	if opts.Namespace == "" {
		opts.Namespace = in.Namespace
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	rendered, err := templateChart(ctx, chrt, vals, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("helm chart %s: release %s: %w", chartRel, opts.ReleaseName, err)
	}
	out, err := rendered.objects(path.Dir(chartRel))
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}
	return out, nil
}

// objects parses the rendered documents: CRDs, manifests, then the hooks
// Argo CD runs during a sync, mapped by helmHook. Each object is named by
// its chart file, under prefix (the folder holding the chart, relative to
// the repository root).
func (c *chartOutput) objects(prefix string) ([]render.Origined, error) {
	var out []render.Origined
	add := func(file, data string, hook *release.Hook) error {
		origin := joinOrigin(prefix, filepath.ToSlash(file))
		objs, err := manifest.Parse(origin, []byte(data))
		if err != nil {
			return err
		}
		for _, o := range objs {
			if hook != nil && !helmHook(o, hook) {
				continue
			}
			out = append(out, render.Origined{Obj: o, Origin: origin})
		}
		return nil
	}
	for _, crd := range c.CRDs {
		if err := add(crd.Filename, string(crd.File.Data), nil); err != nil {
			return nil, err
		}
	}
	for _, m := range c.Manifests {
		if err := add(m.Name, m.Content, nil); err != nil {
			return nil, err
		}
	}
	for _, hook := range c.Hooks {
		if err := add(hook.Path, hook.Manifest, hook); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// helmHook maps the Helm hook h (Helm's parsed events, weight and delete
// policies) onto its object o as Argo CD does, writing Argo CD's hook
// annotations so that the bundle says what the agent runs; it reports
// whether o is kept. As in Argo CD:
//   - an object with Argo CD's own hook annotation keeps it, and its Helm
//     annotations are ignored;
//   - pre-install and pre-upgrade run in PreSync, post-install and
//     post-upgrade in PostSync (install and upgrade are not told apart);
//   - test hooks (test, test-success, test-failure) and pre-delete,
//     post-delete, pre-rollback and post-rollback hooks are dropped: a sync
//     never runs them;
//   - helm.sh/hook-weight orders hooks as the sync wave, unless the object
//     sets a sync-wave annotation;
//   - hook-succeeded, hook-failed and before-hook-creation map to
//     HookSucceeded, HookFailed and BeforeHookCreation (the default, for
//     Helm as for Argo CD).
func helmHook(o *unstructured.Unstructured, h *release.Hook) bool {
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	if _, argo := ann[manifest.HookAnnotation]; argo {
		return true
	}
	var phases []string
	for _, e := range h.Events {
		if ph, ok := manifest.HelmPhase(string(e)); ok && !slices.Contains(phases, string(ph)) {
			phases = append(phases, string(ph))
		}
	}
	if len(phases) == 0 {
		return false
	}
	ann[manifest.HookAnnotation] = strings.Join(phases, ",")
	_, wave := ann[manifest.ArgoSyncWaveAnnotation]
	_, flotillaWave := ann[manifest.SyncWaveAnnotation]
	if !wave && !flotillaWave && h.Weight != 0 {
		ann[manifest.ArgoSyncWaveAnnotation] = strconv.Itoa(h.Weight)
	}
	var policies []string
	for _, p := range h.DeletePolicies {
		if dp, ok := manifest.HelmDeletePolicy(string(p)); ok && !slices.Contains(policies, string(dp)) {
			policies = append(policies, string(dp))
		}
	}
	if _, set := ann[manifest.HookDeletePolicyAnnotation]; !set && len(policies) > 0 {
		ann[manifest.HookDeletePolicyAnnotation] = strings.Join(policies, ",")
	}
	o.SetAnnotations(ann)
	return true
}

func joinOrigin(prefix, p string) string {
	if prefix == "." || prefix == "" {
		return p
	}
	return prefix + "/" + p
}

// helmValues merges the value sources of h. A value file "$ref/path" is
// read from the repository of the source with that ref (refs: ref name →
// checkout), relative to its root.
func helmValues(root *render.Root, chartDir string, h *app.Helm, refs map[string]string) (map[string]any, error) {
	vals := map[string]any{}
	for i, f := range h.ValueFiles {
		field := fmt.Sprintf("helm.valueFiles[%d] %s", i, f)
		if u, err := url.Parse(f); err == nil && u.Scheme != "" {
			return nil, fmt.Errorf("%s: remote value files are not supported", field)
		}
		var data []byte
		var err error
		if ref, ok := app.ValueFileRef(f); ok {
			data, err = readRefFile(refs, ref, f)
		} else {
			p := path.Join(chartDir, f)
			if path.IsAbs(f) {
				p = path.Clean("." + f) // absolute means from the repository root, as in Argo CD
			}
			data, err = root.ReadFile(p)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		vals = target.MergeValues(vals, m)
	}
	if h.Values != "" {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(h.Values), &m); err != nil {
			return nil, fmt.Errorf("helm.values: %w", err)
		}
		vals = target.MergeValues(vals, m)
	}
	if h.ValuesObject != nil {
		vals = target.MergeValues(vals, deepCopyJSON(h.ValuesObject))
	}
	for i, p := range h.Parameters {
		set := p.Name + "=" + p.Value
		var err error
		if p.ForceString {
			err = strvals.ParseIntoString(set, vals)
		} else {
			err = strvals.ParseInto(set, vals)
		}
		if err != nil {
			return nil, fmt.Errorf("helm.parameters[%d] %s: %w", i, p.Name, err)
		}
	}
	return vals, nil
}

// readRefFile reads the value file vf ("$ref/path") from the checkout of
// the source with ref, inside it only.
func readRefFile(refs map[string]string, ref, vf string) ([]byte, error) {
	dir, ok := refs[ref]
	if !ok {
		return nil, fmt.Errorf("no source has ref %q", ref)
	}
	_, rel, _ := strings.Cut(vf, "/")
	if rel == "" {
		return nil, fmt.Errorf("no file after $%s", ref)
	}
	r, err := render.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadFile(path.Clean("./" + rel))
}

func deepCopyJSON(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			out[k] = deepCopyJSON(x)
		case []any:
			s := make([]any, len(x))
			copy(s, x)
			out[k] = s
		default:
			out[k] = v
		}
	}
	return out
}
