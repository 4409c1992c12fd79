package app

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// InClusterName is Argo CD's name for the cluster it runs in.
const InClusterName = "in-cluster"

// argoProject is the part of Argo CD's AppProject that Flotilla reads.
type argoProject struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec argoProjectSpec `json:"spec"`
}

type argoProjectSpec struct {
	Description                     string            `json:"description,omitempty"`
	SourceRepos                     []string          `json:"sourceRepos,omitempty"`
	Destinations                    []argoDestination `json:"destinations,omitempty"`
	ClusterResourceWhitelist        []argoGroupKind   `json:"clusterResourceWhitelist,omitempty"`
	ClusterResourceBlacklist        []argoGroupKind   `json:"clusterResourceBlacklist,omitempty"`
	NamespaceResourceWhitelist      []argoGroupKind   `json:"namespaceResourceWhitelist,omitempty"`
	NamespaceResourceBlacklist      []argoGroupKind   `json:"namespaceResourceBlacklist,omitempty"`
	OrphanedResources               *argoOrphaned     `json:"orphanedResources,omitempty"`
	SyncWindows                     []argoSyncWindow  `json:"syncWindows,omitempty"`
	Roles                           any               `json:"roles,omitempty"`
	SignatureKeys                   any               `json:"signatureKeys,omitempty"`
	SourceNamespaces                any               `json:"sourceNamespaces,omitempty"`
	PermitOnlyProjectScopedClusters any               `json:"permitOnlyProjectScopedClusters,omitempty"`
	DestinationServiceAccounts      any               `json:"destinationServiceAccounts,omitempty"`
}

type argoGroupKind struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
}

type argoOrphaned struct {
	Warn   *bool           `json:"warn,omitempty"`
	Ignore []argoGroupKind `json:"ignore,omitempty"`
}

type argoSyncWindow struct {
	Kind         string   `json:"kind"`
	Schedule     string   `json:"schedule"`
	Duration     string   `json:"duration"`
	Applications []string `json:"applications,omitempty"`
	Namespaces   []string `json:"namespaces,omitempty"`
	Clusters     []string `json:"clusters,omitempty"`
	ManualSync   bool     `json:"manualSync,omitempty"`
	TimeZone     string   `json:"timeZone,omitempty"`
	AndOperator  bool     `json:"andOperator,omitempty"`
	Description  string   `json:"description,omitempty"`
}

// convertArgoProject converts an argoproj.io/v1alpha1 AppProject (decoded
// JSON) to a Project. Destinations name clusters by destination.name (a
// glob, "in-cluster" being the hub) or by server: "*" is every cluster and
// the hub, "flotilla://<name>" a cluster, Argo CD's in-cluster URL the hub;
// any other server URL names no Flotilla cluster and is dropped with a
// warning. Fields Flotilla does not enforce are reported as warnings.
func convertArgoProject(file string, m map[string]any) (*Project, []string, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, invalidf("%v", err))
	}
	var in argoProject
	if err := json.Unmarshal(js, &in); err != nil {
		return nil, nil, fmt.Errorf("%s: AppProject %s: %w", file, nameOf(m), invalidf("%v", fieldError(err)))
	}
	n := &notes{prefix: fmt.Sprintf("%s: AppProject %s", file, in.Metadata.Name)}
	for k := range m {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		case "spec":
			for _, f := range sorted(unknownFields(m["spec"], reflect.TypeOf(argoProjectSpec{}), "spec")) {
				n.add(f, "unknown field; ignored")
			}
		default:
			n.add(k, "unknown field; ignored")
		}
	}
	s := in.Spec
	out := &Project{Name: in.Metadata.Name, File: file, Spec: ProjectSpec{Description: s.Description, SourceRepos: s.SourceRepos}}
	for i, d := range s.Destinations {
		f := fmt.Sprintf("spec.destinations[%d]", i)
		pd := ProjectDestination{Namespace: d.Namespace}
		switch {
		case d.Name == InClusterName || d.Server == InClusterServer:
			pd.Hub = true
		case d.Name != "":
			pd.Clusters = []string{d.Name}
		case d.Server == "*":
			pd.Clusters, pd.Hub = []string{"*"}, true
		case strings.HasPrefix(d.Server, ServerScheme):
			pd.Clusters = []string{strings.TrimPrefix(d.Server, ServerScheme)}
		default:
			n.add(f, "server %q names no Flotilla cluster (name clusters with destination.name, a glob); destination dropped", d.Server)
			continue
		}
		out.Spec.Destinations = append(out.Spec.Destinations, pd)
	}
	for _, l := range []struct {
		field string
		in    []argoGroupKind
		out   *[]GroupKind
	}{
		{"spec.clusterResourceWhitelist", s.ClusterResourceWhitelist, &out.Spec.ClusterResourceWhitelist},
		{"spec.clusterResourceBlacklist", s.ClusterResourceBlacklist, &out.Spec.ClusterResourceBlacklist},
		{"spec.namespaceResourceWhitelist", s.NamespaceResourceWhitelist, &out.Spec.NamespaceResourceWhitelist},
		{"spec.namespaceResourceBlacklist", s.NamespaceResourceBlacklist, &out.Spec.NamespaceResourceBlacklist},
	} {
		for i, gk := range l.in {
			if gk.Name != "" {
				n.add(fmt.Sprintf("%s[%d].name", l.field, i), "names are not supported; the rule applies to every %s", gk.Kind)
			}
			*l.out = append(*l.out, GroupKind{Group: gk.Group, Kind: gk.Kind})
		}
	}
	if o := s.OrphanedResources; o != nil {
		out.Spec.OrphanedResources = &OrphanedResources{Warn: o.Warn == nil || *o.Warn}
		for _, k := range o.Ignore {
			out.Spec.OrphanedResources.Ignore = append(out.Spec.OrphanedResources.Ignore, OrphanedKey(k))
		}
	}
	for _, w := range s.SyncWindows {
		out.Spec.SyncWindows = append(out.Spec.SyncWindows, SyncWindow{
			Kind: w.Kind, Schedule: w.Schedule, Duration: w.Duration, Applications: w.Applications,
			Namespaces: w.Namespaces, Clusters: w.Clusters, ManualSync: w.ManualSync, TimeZone: w.TimeZone,
			AndOperator: w.AndOperator,
		})
	}
	for name, v := range map[string]any{
		"roles":                           s.Roles,
		"signatureKeys":                   s.SignatureKeys,
		"sourceNamespaces":                s.SourceNamespaces,
		"permitOnlyProjectScopedClusters": s.PermitOnlyProjectScopedClusters,
		"destinationServiceAccounts":      s.DestinationServiceAccounts,
	} {
		if v == nil || isEmpty(v) {
			continue
		}
		switch name {
		case "roles":
			n.add("spec."+name, "project roles are not supported; the hub's roles apply (docs/security-model.md); ignored")
		case "signatureKeys":
			n.add("spec."+name, "commit signature verification is not supported; commits are NOT verified; ignored")
		default:
			n.add("spec."+name, "not supported; ignored")
		}
	}
	slices.Sort(n.list)
	if err := ValidateProject(out); err != nil {
		return nil, n.list, err
	}
	return out, n.list, nil
}
