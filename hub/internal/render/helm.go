package render

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// renderHelm renders the chart in dir as `helm template` does (client only,
// CRDs included unless skipCrds, hooks included as plain objects except
// test hooks). Values are merged in this order, later wins: the chart's
// values.yaml, helm.valueFiles (relative to the chart folder, inside the
// repository), helm.values, helm.valuesObject, helm.parameters. The release
// name defaults to the application name; the namespace to the destination
// namespace. Chart dependencies must be vendored in charts/.
//
// Every file is read through the repository root (see readChart).
func renderHelm(ctx context.Context, root *repoRoot, dir string, in Input) ([]origined, error) {
	h := in.Source.Helm
	if h == nil {
		h = &app.Helm{}
	}
	chartRel := dir
	if !root.isFile(path.Join(dir, "Chart.yaml")) {
		return nil, fmt.Errorf("helm chart %s: no Chart.yaml (missing chart)", chartRel)
	}
	chrt, err := readChart(root, dir)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}
	if err := checkDependencies(chrt); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w (vendor dependencies into charts/)", chartRel, err)
	}
	vals, err := helmValues(root, dir, h)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}

	opts := templateOptions{ReleaseName: h.ReleaseName, Namespace: h.Namespace, IncludeCRDs: !h.SkipCRDs}
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

// objects parses the rendered documents: CRDs, manifests, then hooks other
// than test hooks. Each object is named by its chart file, under prefix
// (the folder holding the chart, relative to the repository root).
func (c *chartOutput) objects(prefix string) ([]origined, error) {
	var out []origined
	add := func(file, data string) error {
		origin := joinOrigin(prefix, filepath.ToSlash(file))
		objs, err := manifest.Parse(origin, []byte(data))
		if err != nil {
			return err
		}
		for _, o := range objs {
			out = append(out, origined{obj: o, origin: origin})
		}
		return nil
	}
	for _, crd := range c.CRDs {
		if err := add(crd.Filename, string(crd.File.Data)); err != nil {
			return nil, err
		}
	}
	for _, m := range c.Manifests {
		if err := add(m.Name, m.Content); err != nil {
			return nil, err
		}
	}
	for _, hook := range c.Hooks {
		if isTestHook(hook) {
			continue
		}
		if err := add(hook.Path, hook.Manifest); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func joinOrigin(prefix, p string) string {
	if prefix == "." || prefix == "" {
		return p
	}
	return prefix + "/" + p
}

// helmValues merges the value sources of h.
func helmValues(root *repoRoot, chartDir string, h *app.Helm) (map[string]any, error) {
	vals := map[string]any{}
	for i, f := range h.ValueFiles {
		field := fmt.Sprintf("helm.valueFiles[%d] %s", i, f)
		if u, err := url.Parse(f); err == nil && u.Scheme != "" {
			return nil, fmt.Errorf("%s: remote value files are not supported", field)
		}
		if strings.HasPrefix(f, "$") {
			return nil, fmt.Errorf("%s: references to other sources are not supported", field)
		}
		p := path.Join(chartDir, f)
		if path.IsAbs(f) {
			p = path.Clean("." + f) // absolute means from the repository root, as in Argo CD
		}
		data, err := root.readFile(p)
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
