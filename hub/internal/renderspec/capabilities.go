package renderspec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/version"
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
	if _, err := version.ParseGeneric(kubeVersion); err != nil {
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
