package capabilities

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Read reads the API server's version and served API versions with
// client (see apply.NewDiscoveryClient). Versions of an aggregated API
// server that did not answer are left out, as Helm leaves out groups
// discovery failed for.
func Read(ctx context.Context, client rest.Interface) (*apiv1alpha1.ClusterCapabilities, error) {
	raw, err := client.Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	var info version.Info
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	groups, err := apply.Discover(ctx, client)
	if err != nil {
		return nil, err
	}
	return &apiv1alpha1.ClusterCapabilities{KubeVersion: info.GitVersion, ApiVersions: APIVersions(groups)}, nil
}

// APIVersions lists what groups serve as Helm's .Capabilities.APIVersions
// does: every "group/version" ("v1" for the core group) and
// "group/version/Kind" of a resource or subresource, sorted, without
// duplicates.
func APIVersions(groups []apidiscoveryv2.APIGroupDiscovery) []string {
	var out []string
	for _, g := range groups {
		for _, v := range g.Versions {
			if v.Freshness == apidiscoveryv2.DiscoveryFreshnessStale {
				continue
			}
			gv := v.Version
			if g.Name != "" {
				gv = g.Name + "/" + v.Version
			}
			out = append(out, gv)
			for _, r := range v.Resources {
				if r.ResponseKind != nil && r.ResponseKind.Kind != "" {
					out = append(out, gv+"/"+r.ResponseKind.Kind)
				}
				for _, sub := range r.Subresources {
					if sub.ResponseKind != nil && sub.ResponseKind.Kind != "" {
						out = append(out, gv+"/"+sub.ResponseKind.Kind)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
