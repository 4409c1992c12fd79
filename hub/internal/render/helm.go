package render

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/strvals"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
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
func renderHelm(ctx context.Context, root repoRoot, dir string, in Input) ([]origined, error) {
	h := in.Source.Helm
	if h == nil {
		h = &app.Helm{}
	}
	chartRel := root.rel(dir)
	if !exists(filepath.Join(dir, "Chart.yaml")) {
		return nil, fmt.Errorf("helm chart %s: no Chart.yaml (missing chart)", chartRel)
	}
	if err := root.checkLinks(dir); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}
	chrt, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}
	if err := action.CheckDependencies(chrt, chrt.Metadata.Dependencies); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w (vendor dependencies into charts/)", chartRel, err)
	}
	vals, err := helmValues(root, dir, h)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}

	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = !h.SkipCRDs
	install.DisableHooks = false
	install.ReleaseName = h.ReleaseName
	if install.ReleaseName == "" {
		install.ReleaseName = in.AppName
	}
	install.Namespace = h.Namespace
	if install.Namespace == "" {
		install.Namespace = in.Namespace
	}
	if install.Namespace == "" {
		install.Namespace = "default"
	}
	rel, err := install.RunWithContext(ctx, chrt, vals)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("helm chart %s: release %s: %w", chartRel, install.ReleaseName, err)
	}
	prefix := filepath.ToSlash(filepath.Dir(chartRel))
	out, err := parseHelmManifest(prefix, rel.Manifest)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
	}
	for _, hook := range rel.Hooks {
		if isTestHook(hook) {
			continue
		}
		objs, err := manifest.Parse(joinOrigin(prefix, hook.Path), []byte(hook.Manifest))
		if err != nil {
			return nil, fmt.Errorf("helm chart %s: %w", chartRel, err)
		}
		for _, o := range objs {
			out = append(out, origined{obj: o, origin: joinOrigin(prefix, hook.Path)})
		}
	}
	return out, nil
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}

func joinOrigin(prefix, p string) string {
	if prefix == "." || prefix == "" {
		return p
	}
	return prefix + "/" + p
}

// helmValues merges the value sources of h.
func helmValues(root repoRoot, chartDir string, h *app.Helm) (map[string]any, error) {
	vals := map[string]any{}
	for i, f := range h.ValueFiles {
		field := fmt.Sprintf("helm.valueFiles[%d] %s", i, f)
		if u, err := url.Parse(f); err == nil && u.Scheme != "" {
			return nil, fmt.Errorf("%s: remote value files are not supported", field)
		}
		if strings.HasPrefix(f, "$") {
			return nil, fmt.Errorf("%s: references to other sources are not supported", field)
		}
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(chartDir, filepath.FromSlash(f))
		} else {
			p = filepath.Join(root.path, p) // absolute means from the repository root, as in Argo CD
		}
		real, err := root.resolve(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		data, err := os.ReadFile(real)
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

// parseHelmManifest splits a release manifest at its "# Source:" comments
// so that every object is named by the template it came from.
func parseHelmManifest(prefix, m string) ([]origined, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(m)))
	var out []origined
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		origin := "(unknown template)"
		for _, l := range bytes.Split(doc, []byte("\n")) {
			if s, ok := bytes.CutPrefix(bytes.TrimSpace(l), []byte("# Source: ")); ok {
				origin = joinOrigin(prefix, string(s))
				break
			}
		}
		objs, err := manifest.Parse(origin, doc)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			out = append(out, origined{obj: o, origin: origin})
		}
	}
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
