package engines

import (
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"slices"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// helmCapabilities returns Helm's capabilities for c; nil c gives Helm's
// client-only defaults (what `helm template` uses without --kube-version
// and --api-versions).
func helmCapabilities(c *render.Capabilities) (*chartutil.Capabilities, error) {
	if c == nil {
		return chartutil.DefaultCapabilities.Copy(), nil
	}
	kv, err := chartutil.ParseKubeVersion(c.KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("kubernetes version %q: %w", c.KubeVersion, err)
	}
	// As `helm install` against the cluster: the version string is the
	// API server's gitVersion as served (pre-release and build parts
	// kept), major and minor parsed from it.
	kv.Version = c.KubeVersion
	return &chartutil.Capabilities{
		KubeVersion: *kv,
		APIVersions: chartutil.VersionSet(slices.Clone(c.APIVersions)),
		HelmVersion: chartutil.DefaultCapabilities.HelmVersion,
	}, nil
}

// overrideCapabilities returns the capabilities a chart renders with when
// its source sets helm.kubeVersion or helm.apiVersions: as Argo CD's
// overrides, the Kubernetes version replaces the cluster's (read as
// `helm template --kube-version` reads it: "1.24" is v1.24) and the API
// versions replace the cluster's list. c is returned unchanged without
// overrides; a nil c (no cluster) starts from Helm's client-only defaults.
func overrideCapabilities(c *render.Capabilities, h *app.Helm) (*render.Capabilities, error) {
	if h == nil || (h.KubeVersion == "" && len(h.APIVersions) == 0) {
		return c, nil
	}
	kubeVersion := chartutil.DefaultCapabilities.KubeVersion.Version
	apiVersions := []string(chartutil.DefaultVersionSet)
	if c != nil {
		kubeVersion, apiVersions = c.KubeVersion, c.APIVersions
	}
	if h.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(h.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("helm.kubeVersion %q: %w", h.KubeVersion, err)
		}
		kubeVersion = kv.Version
	}
	if len(h.APIVersions) > 0 {
		apiVersions = h.APIVersions
	}
	return render.NewCapabilities(kubeVersion, apiVersions)
}
