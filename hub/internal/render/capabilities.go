package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// Capabilities are what a cluster's API server serves, as its agent
// reported them: Helm's .Capabilities.KubeVersion and
// .Capabilities.APIVersions. A Helm chart renders with exactly these (as
// `helm install` does against that cluster), so two clusters with the same
// Capabilities render alike and share one render.
type Capabilities struct {
	// KubeVersion is the API server's version ("v1.31.2").
	KubeVersion string `json:"kubeVersion"`
	// APIVersions are the served "group/version" and
	// "group/version/Kind" strings ("v1", "apps/v1/Deployment").
	APIVersions []string `json:"apiVersions"`

	// digest is Digest's answer, computed once by NewCapabilities (a
	// set is hashed for every job key and render key of its cluster).
	digest string
}

// NewCapabilities returns the capabilities of kubeVersion and apiVersions,
// the versions sorted and without duplicates. It refuses a kubeVersion
// that is not a semantic version.
func NewCapabilities(kubeVersion string, apiVersions []string) (*Capabilities, error) {
	if _, err := chartutil.ParseKubeVersion(kubeVersion); err != nil {
		return nil, fmt.Errorf("kubernetes version %q: %w", kubeVersion, err)
	}
	vs := slices.Clone(apiVersions)
	slices.Sort(vs)
	c := &Capabilities{KubeVersion: kubeVersion, APIVersions: slices.Compact(vs)}
	c.digest = c.computeDigest()
	return c, nil
}

// Digest identifies the capability set: equal sets (whatever the order
// of APIVersions) have equal digests. Do not modify a set made by
// NewCapabilities: its digest is computed once.
func (c *Capabilities) Digest() string {
	if c.digest != "" {
		return c.digest
	}
	return c.computeDigest()
}

func (c *Capabilities) computeDigest() string {
	vs := slices.Clone(c.APIVersions)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	h := sha256.New()
	fmt.Fprintf(h, "flotilla.capabilities.v1\x00%s\x00", c.KubeVersion)
	for _, v := range vs {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// helmCapabilities returns Helm's capabilities for c; nil c gives Helm's
// client-only defaults (what `helm template` uses without --kube-version
// and --api-versions).
func helmCapabilities(c *Capabilities) (*chartutil.Capabilities, error) {
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
func overrideCapabilities(c *Capabilities, h *app.Helm) (*Capabilities, error) {
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
	return NewCapabilities(kubeVersion, apiVersions)
}

// NeedsCapabilities reports whether src, checked out at root, is rendered
// with the cluster's capabilities: a Helm chart, or a kustomization with
// helmCharts. Plain directories and other kustomizations render the same
// for every cluster.
func NeedsCapabilities(root string, src app.Source) bool {
	r, err := openRepoRoot(root)
	if err != nil {
		return false // the render reports the error
	}
	defer r.close()
	dir, err := r.dir(src.Path)
	if err != nil {
		return false
	}
	switch detect(r, dir, src) {
	case kindHelm:
		return true
	case kindKustomize:
		_, inflates, _ := kustomizeCharts(r, dir)
		return inflates // helmCharts render as Helm charts do
	}
	return false
}
