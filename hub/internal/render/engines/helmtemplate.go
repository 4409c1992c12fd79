package engines

import (
	"context"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// This file reproduces what helm's action.Install.RunWithContext does for
// `helm template` (DryRun, ClientOnly, no cluster, hooks kept), with helm's
// lower-level packages only: pkg/action links client-go's typed clientset,
// kubectl, cli-runtime, the release storage drivers and more, none of which
// a client-only render uses. Follow helm v3.22 pkg/action/install.go
// (RunWithContext) and pkg/action/action.go (renderResources) when updating.

// notesFileSuffix names the file helm renders as release notes, not objects.
const notesFileSuffix = "NOTES.txt"

// templateOptions are the release settings of a client-only render.
type templateOptions struct {
	// ReleaseName is .Release.Name; it must be a valid release name.
	ReleaseName string
	// Namespace is .Release.Namespace.
	Namespace string
	// Capabilities are the target cluster's (nil: Helm's client-only
	// defaults).
	Capabilities *render.Capabilities
	// IncludeCRDs adds the files of every crds/ folder (the chart's and
	// its subcharts') ahead of the templates, as `helm template
	// --include-crds` does.
	IncludeCRDs bool
	// KubeVersionOverride says that render.Capabilities.KubeVersion is the
	// source's helm.kubeVersion, not the cluster's (for errors).
	KubeVersionOverride bool
}

// chartOutput is a rendered chart: what `helm template` prints, split.
type chartOutput struct {
	// CRDs are the crds/ files (chart first, then subcharts), verbatim,
	// when templateOptions.IncludeCRDs is set.
	CRDs []chart.CRD
	// Manifests are the non-hook documents in helm's install order, each
	// named by its template ("mychart/templates/x.yaml").
	Manifests []releaseutil.Manifest
	// Hooks are the documents annotated helm.sh/hook, test hooks
	// included, sorted by weight then kind as helm sorts them.
	Hooks []*release.Hook
}

// templateChart renders chrt with the user values vals (not yet merged with
// the chart's values.yaml) as a client-only install: dependencies enabled
// or disabled by condition and tags and import-values merged, values
// checked against every values.schema.json, the chart's kubeVersion checked
// against the cluster's version (opts.Capabilities), templates rendered without a
// cluster (lookup returns nothing), NOTES.txt and partials dropped, hooks
// split from manifests. chrt is modified (disabled dependencies removed).
func templateChart(ctx context.Context, chrt *chart.Chart, vals map[string]any, opts templateOptions) (*chartOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := chartutil.ValidateReleaseName(opts.ReleaseName); err != nil {
		return nil, fmt.Errorf("release name %q: %w", opts.ReleaseName, err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(chrt, vals); err != nil {
		return nil, err
	}
	caps, err := helmCapabilities(opts.Capabilities)
	if err != nil {
		return nil, err
	}
	relOpts := chartutil.ReleaseOptions{
		Name:      opts.ReleaseName,
		Namespace: opts.Namespace,
		Revision:  1,
		IsInstall: true,
	}
	values, err := chartutil.ToRenderValuesWithSchemaValidation(chrt, vals, relOpts, caps, false)
	if err != nil {
		return nil, err
	}
	if kv := chrt.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s%s", kv, caps.KubeVersion.String(), kubeVersionSource(opts))
	}
	var eng engine.Engine // no REST config: lookup finds nothing, as in helm template
	files, err := eng.Render(chrt, values)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for name := range files {
		if strings.HasSuffix(name, notesFileSuffix) {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	out := &chartOutput{Manifests: manifests, Hooks: hooks}
	if opts.IncludeCRDs {
		out.CRDs = chrt.CRDObjects()
	}
	return out, nil
}

// checkDependencies refuses a chart whose Chart.yaml lists a dependency
// that is not in its charts/ folder (as helm's action.CheckDependencies).
func checkDependencies(chrt *chart.Chart) error {
	have := make(map[string]bool, len(chrt.Dependencies()))
	for _, d := range chrt.Dependencies() {
		have[d.Name()] = true
	}
	var missing []string
	for _, r := range chrt.Metadata.Dependencies {
		if !have[r.Name] {
			missing = append(missing, r.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("found in Chart.yaml, but missing in charts/ directory: %s", strings.Join(missing, ", "))
	}
	return nil
}

// kubeVersionSource says where the Kubernetes version of an error came
// from.
func kubeVersionSource(opts templateOptions) string {
	switch {
	case opts.KubeVersionOverride:
		return " (the source's helm.kubeVersion)"
	case opts.Capabilities == nil:
		return "" // Helm's default, worded as helm words it
	}
	return " (the version of the cluster's API server)"
}
