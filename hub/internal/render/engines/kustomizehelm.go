package engines

import (
	"bytes"
	"context"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"path"
	"path/filepath"
	"slices"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
)

// generatedName is the in-memory file the inflated charts of one
// kustomization are written to (added to its resources).
const generatedName = ".flotilla-helm-charts.yaml"

// defaultReleaseName is the release name of a helmCharts entry without
// one: `helm template`'s own default (kustomize asks helm to generate a
// random one, which would change the objects at every render).
const defaultReleaseName = "release-name"

// KustomizeCharts reports whether the kustomization of src, checked out at
// root, or a local kustomization it refers to, has helmCharts, and which
// charts they pull from repositories (those not in their chartHome).
func KustomizeCharts(root string, src app.Source) ([]render.KustomizeChart, bool, error) {
	r, err := render.OpenRoot(root)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	dir, err := r.Dir(src.Path)
	if err != nil || render.Detect(r, dir, src) != render.KindKustomize {
		return nil, false, nil
	}
	return kustomizeCharts(r, dir)
}

func kustomizeCharts(r *render.Root, dir string) ([]render.KustomizeChart, bool, error) {
	var (
		charts   []render.KustomizeChart
		inflates bool
	)
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		file := render.KustomizationFile(r, dir)
		if file == "" {
			return nil
		}
		data, err := r.ReadFile(file)
		if err != nil {
			return err
		}
		var kz types.Kustomization
		if err := yaml.Unmarshal(data, &kz); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for i, hc := range kz.HelmCharts {
			inflates = true
			local, err := localChart(r, dir, kz.HelmGlobals, hc)
			if err != nil {
				return fmt.Errorf("%s: helmCharts[%d]: %w", file, i, err)
			}
			if local == "" && hc.Repo != "" {
				c := render.KustomizeChart{Repo: hc.Repo, Name: hc.Name, Version: hc.Version}
				if !slices.Contains(charts, c) {
					charts = append(charts, c)
				}
			}
		}
		for _, ref := range slices.Concat(kz.Resources, kz.Bases, kz.Components) { //nolint:staticcheck // bases: legacy, still read by kustomize
			if isRemote(ref) {
				continue // refused by the render, with the field named
			}
			sub, err := r.Resolve(path.Join(dir, ref))
			if err != nil {
				continue
			}
			if _, fi, err := r.Stat(sub); err == nil && fi.IsDir() {
				if err := walk(sub); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(dir)
	return charts, inflates, err
}

// localChart returns the folder of hc's chart in its chartHome (relative
// to the root) as kustomize looks for it: <chartHome>/<name>, or
// <chartHome>/<name>-<version>/<name> when the entry names a repository
// and a version; "" when it is not there.
func localChart(r *render.Root, dir string, g *types.HelmGlobals, hc types.HelmChart) (string, error) {
	if hc.Name == "" {
		return "", fmt.Errorf("name: the chart name is empty")
	}
	home := types.HelmDefaultHome
	if g != nil && g.ChartHome != "" {
		home = g.ChartHome
	}
	if path.IsAbs(home) || filepath.IsAbs(home) {
		return "", fmt.Errorf("helmGlobals.chartHome %q: must be a folder of the repository, relative to the kustomization", home)
	}
	home = path.Join(dir, home)
	if hc.Version != "" && hc.Repo != "" {
		home = path.Join(home, hc.Name+"-"+hc.Version)
	}
	p := path.Join(home, hc.Name)
	real, fi, err := r.Stat(p)
	if err != nil || !fi.IsDir() {
		if hc.Repo == "" {
			return "", fmt.Errorf("no repo to pull chart %s from, and no chart at %s", hc.Name, p)
		}
		return "", nil
	}
	return real, nil
}

// kzHelm is what inflating helmCharts needs during one render.
type kzHelm struct {
	ctx  context.Context
	opts *render.KustomizeHelm // nil: helmCharts are refused
	caps *render.Capabilities
}

// inflate renders the helmCharts of the kustomization file (in dir, both
// real paths relative to the root) into an in-memory file beside it and
// replaces the kustomization, in memory, by one that lists that file as a
// resource instead of its helmCharts and helmGlobals.
func (f *rootFS) inflate(dir, file string, kz types.Kustomization) error {
	if f.helm == nil || f.helm.opts == nil {
		return fmt.Errorf("%s: helmCharts: Helm chart inflation in kustomize is off on this hub (start it with --kustomize-enable-helm, as Argo CD's --enable-helm)", file)
	}
	if len(kz.HelmChartInflationGenerator) > 0 { //nolint:staticcheck // legacy field, refused with its name
		return fmt.Errorf("%s: helmChartInflationGenerator: the legacy form is not supported; use helmCharts", file)
	}
	gen := path.Join(dir, generatedName)
	if f.root.IsFile(gen) {
		return fmt.Errorf("%s: helmCharts: the repository has a file %s, where the inflated charts go", file, gen)
	}
	var out bytes.Buffer
	for i, hc := range kz.HelmCharts {
		field := fmt.Sprintf("helmCharts[%d] (%s)", i, hc.Name)
		objs, err := f.inflateChart(dir, kz.HelmGlobals, hc)
		if err != nil {
			if f.helm.ctx.Err() != nil {
				return f.helm.ctx.Err()
			}
			return fmt.Errorf("%s: %s: %w", file, field, err)
		}
		for _, o := range objs {
			b, err := yaml.Marshal(o.Obj.Object)
			if err != nil {
				return fmt.Errorf("%s: %s: %s: %w", file, field, o.Origin, err)
			}
			out.WriteString("---\n")
			out.Write(b)
		}
	}
	kz.HelmCharts, kz.HelmGlobals = nil, nil
	kz.Resources = append(kz.Resources, generatedName)
	edited, err := yaml.Marshal(kz)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	f.overrides[gen] = out.Bytes()
	f.overrides[file] = edited
	return nil
}

// inflateChart renders one helmCharts entry as kustomize's
// HelmChartInflationGenerator has `helm template` do it.
func (f *rootFS) inflateChart(dir string, g *types.HelmGlobals, hc types.HelmChart) ([]render.Origined, error) {
	if hc.NameTemplate != "" {
		return nil, fmt.Errorf("nameTemplate is not supported; set releaseName")
	}
	local, err := localChart(f.root, dir, g, hc)
	if err != nil {
		return nil, err
	}
	chartRoot, chartDir, origin := f.root, local, local
	if local == "" {
		folder, ok := f.helm.opts.Charts[render.KustomizeChart{Repo: hc.Repo, Name: hc.Name, Version: hc.Version}.Key()]
		if !ok {
			return nil, fmt.Errorf("chart %s %s from %s was not fetched by the hub", hc.Name, hc.Version, hc.Repo)
		}
		cr, err := render.OpenRoot(filepath.Dir(folder))
		if err != nil {
			return nil, err
		}
		defer cr.Close()
		chartRoot, chartDir, origin = cr, filepath.Base(folder), hc.Repo+" "+hc.Name
	}
	chrt, err := readChart(chartRoot, chartDir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", origin, err)
	}
	if err := checkDependencies(chrt); err != nil {
		return nil, fmt.Errorf("chart %s: %w", origin, err)
	}
	vals, err := f.inflateValues(dir, chrt.Values, hc)
	if err != nil {
		return nil, err
	}
	caps, err := overrideCapabilities(f.helm.caps, &app.Helm{KubeVersion: hc.KubeVersion, APIVersions: hc.ApiVersions})
	if err != nil {
		return nil, err
	}
	opts := templateOptions{ReleaseName: hc.ReleaseName, Namespace: hc.Namespace, IncludeCRDs: hc.IncludeCRDs, Capabilities: caps, KubeVersionOverride: hc.KubeVersion != ""}
	if opts.ReleaseName == "" {
		opts.ReleaseName = defaultReleaseName
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	rendered, err := templateChart(f.helm.ctx, chrt, vals, opts)
	if err != nil {
		return nil, fmt.Errorf("chart %s: release %s: %w", origin, opts.ReleaseName, err)
	}
	if hc.SkipHooks {
		rendered.Hooks = nil
	}
	return rendered.objects(dir)
}

// inflateValues merges a helmCharts entry's values as kustomize does: the
// values file (the chart's values.yaml when none is named) with
// valuesInline by valuesMerge (override: inline wins, the default; merge:
// the file wins; replace: inline only), then additionalValuesFiles in
// order. The chart's own values stay the defaults under all of them, as
// in Helm.
func (f *rootFS) inflateValues(dir string, chartValues map[string]any, hc types.HelmChart) (map[string]any, error) {
	read := func(field, p string) (map[string]any, error) {
		if isRemote(p) {
			return nil, fmt.Errorf("%s %q: %w", field, p, render.ErrRemoteDisabled)
		}
		if path.IsAbs(p) || filepath.IsAbs(p) {
			return nil, fmt.Errorf("%s %q: must be a file of the repository, relative to the kustomization", field, p)
		}
		data, err := f.root.ReadFile(path.Join(dir, p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s %s: %w", field, p, err)
		}
		return m, nil
	}
	file := deepCopyJSON(chartValues)
	if hc.ValuesFile != "" {
		var err error
		if file, err = read("valuesFile", hc.ValuesFile); err != nil {
			return nil, err
		}
	}
	inline := deepCopyJSON(hc.ValuesInline)
	var vals map[string]any
	switch hc.ValuesMerge {
	case "", "override":
		vals = target.MergeValues(file, inline)
	case "merge":
		vals = target.MergeValues(inline, file)
	case "replace":
		vals = inline
	default:
		return nil, fmt.Errorf("valuesMerge %q: must be merge, override or replace", hc.ValuesMerge)
	}
	if vals == nil {
		vals = map[string]any{}
	}
	for i, p := range hc.AdditionalValuesFiles {
		m, err := read(fmt.Sprintf("additionalValuesFiles[%d]", i), p)
		if err != nil {
			return nil, err
		}
		vals = target.MergeValues(vals, m)
	}
	return vals, nil
}
