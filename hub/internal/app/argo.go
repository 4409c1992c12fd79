package app

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// InClusterServer is Argo CD's name for the cluster it runs in. Flotilla has
// no such cluster: an Argo CD Application must name its cluster with
// spec.destination.name.
const InClusterServer = "https://kubernetes.default.svc"

// ServerScheme prefixes the "server" parameter the clusters generator gives
// each cluster ("flotilla://<name>"); a destination.server of that form
// names the cluster, so ApplicationSets using '{{server}}' work unchanged.
const ServerScheme = "flotilla://"

// argoApplication is the part of Argo CD's Application that Flotilla reads.
// Fields listed here but not supported are reported by convertArgoSpec.
type argoApplication struct {
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec argoSpec `json:"spec"`
}

type argoSpec struct {
	Project              string                 `json:"project,omitempty"`
	Source               *argoSource            `json:"source,omitempty"`
	Sources              []argoSource           `json:"sources,omitempty"`
	Destination          argoDestination        `json:"destination"`
	SyncPolicy           *argoSyncPolicy        `json:"syncPolicy,omitempty"`
	IgnoreDifferences    []argoIgnoreDifference `json:"ignoreDifferences,omitempty"`
	Info                 any                    `json:"info,omitempty"`
	RevisionHistoryLimit any                    `json:"revisionHistoryLimit,omitempty"`
	SourceHydrator       any                    `json:"sourceHydrator,omitempty"`
}

type argoSource struct {
	RepoURL        string         `json:"repoURL"`
	Path           string         `json:"path,omitempty"`
	TargetRevision string         `json:"targetRevision,omitempty"`
	Chart          string         `json:"chart,omitempty"`
	Ref            string         `json:"ref,omitempty"`
	Name           string         `json:"name,omitempty"`
	Helm           *argoHelm      `json:"helm,omitempty"`
	Kustomize      *argoKustomize `json:"kustomize,omitempty"`
	Directory      *argoDirectory `json:"directory,omitempty"`
	Plugin         any            `json:"plugin,omitempty"`
}

type argoHelm struct {
	ValueFiles              []string        `json:"valueFiles,omitempty"`
	Parameters              []HelmParameter `json:"parameters,omitempty"`
	ReleaseName             string          `json:"releaseName,omitempty"`
	Values                  string          `json:"values,omitempty"`
	ValuesObject            map[string]any  `json:"valuesObject,omitempty"`
	SkipCrds                bool            `json:"skipCrds,omitempty"`
	Namespace               string          `json:"namespace,omitempty"`
	FileParameters          any             `json:"fileParameters,omitempty"`
	Version                 string          `json:"version,omitempty"`
	PassCredentials         any             `json:"passCredentials,omitempty"`
	IgnoreMissingValueFiles any             `json:"ignoreMissingValueFiles,omitempty"`
	KubeVersion             string          `json:"kubeVersion,omitempty"`
	APIVersions             []string        `json:"apiVersions,omitempty"`
	SkipTests               any             `json:"skipTests,omitempty"`
	SkipSchemaValidation    any             `json:"skipSchemaValidation,omitempty"`
}

type argoKustomize struct {
	NamePrefix                string             `json:"namePrefix,omitempty"`
	NameSuffix                string             `json:"nameSuffix,omitempty"`
	Namespace                 string             `json:"namespace,omitempty"`
	Images                    []string           `json:"images,omitempty"`
	CommonLabels              map[string]string  `json:"commonLabels,omitempty"`
	CommonAnnotations         map[string]string  `json:"commonAnnotations,omitempty"`
	Replicas                  []KustomizeReplica `json:"replicas,omitempty"`
	Patches                   []KustomizePatch   `json:"patches,omitempty"`
	Components                []string           `json:"components,omitempty"`
	Version                   any                `json:"version,omitempty"`
	ForceCommonLabels         any                `json:"forceCommonLabels,omitempty"`
	ForceCommonAnnotations    any                `json:"forceCommonAnnotations,omitempty"`
	CommonAnnotationsEnvsubst any                `json:"commonAnnotationsEnvsubst,omitempty"`
	LabelWithoutSelector      any                `json:"labelWithoutSelector,omitempty"`
	LabelIncludeTemplates     any                `json:"labelIncludeTemplates,omitempty"`
	IgnoreMissingComponents   any                `json:"ignoreMissingComponents,omitempty"`
	KubeVersion               any                `json:"kubeVersion,omitempty"`
	APIVersions               any                `json:"apiVersions,omitempty"`
}

type argoDirectory struct {
	Recurse bool     `json:"recurse,omitempty"`
	Include string   `json:"include,omitempty"`
	Exclude string   `json:"exclude,omitempty"`
	Jsonnet *Jsonnet `json:"jsonnet,omitempty"`
}

type argoDestination struct {
	Server    string `json:"server,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

type argoSyncPolicy struct {
	Automated *struct {
		Prune      bool  `json:"prune,omitempty"`
		SelfHeal   bool  `json:"selfHeal,omitempty"`
		AllowEmpty any   `json:"allowEmpty,omitempty"`
		Enabled    *bool `json:"enabled,omitempty"`
	} `json:"automated,omitempty"`
	SyncOptions []string `json:"syncOptions,omitempty"`
	Retry       *struct {
		Limit   int64    `json:"limit,omitempty"`
		Backoff *Backoff `json:"backoff,omitempty"`
		Refresh any      `json:"refresh,omitempty"`
	} `json:"retry,omitempty"`
	ManagedNamespaceMetadata any `json:"managedNamespaceMetadata,omitempty"`
}

type argoIgnoreDifference struct {
	Group                 string   `json:"group,omitempty"`
	Kind                  string   `json:"kind"`
	Name                  string   `json:"name,omitempty"`
	Namespace             string   `json:"namespace,omitempty"`
	JSONPointers          []string `json:"jsonPointers,omitempty"`
	JQPathExpressions     any      `json:"jqPathExpressions,omitempty"`
	ManagedFieldsManagers []string `json:"managedFieldsManagers,omitempty"`
}

// notes collects warnings for one definition.
type notes struct {
	prefix string
	list   []string
}

func (n *notes) add(field, format string, args ...any) {
	n.list = append(n.list, fmt.Sprintf("%s: %s: %s", n.prefix, field, fmt.Sprintf(format, args...)))
}

// convertArgoApp converts an argoproj.io/v1alpha1 Application (decoded
// JSON). It returns nil and a warning when the application names no
// cluster. Errors are returned for fields without which Flotilla would
// render something else than Argo CD does.
func convertArgoApp(file string, m map[string]any) (*Application, []string, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, invalidf("%v", err))
	}
	var in argoApplication
	if err := json.Unmarshal(js, &in); err != nil {
		return nil, nil, fmt.Errorf("%s: Application %s: %w", file, nameOf(m), invalidf("%v", fieldError(err)))
	}
	n := &notes{prefix: fmt.Sprintf("%s: Application %s", file, in.Metadata.Name)}
	for k := range m {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		case "spec":
			for _, f := range sorted(unknownFields(m["spec"], reflect.TypeOf(argoSpec{}), "spec")) {
				n.add(f, "unknown field; ignored")
			}
		case "operation":
			n.add(k, "operations are not supported; use the flotilla CLI to sync; ignored")
		default:
			n.add(k, "unknown field; ignored")
		}
	}
	a := &Application{Name: in.Metadata.Name, File: file}
	ok, err := convertArgoSpec(n, in.Spec, &a.Spec)
	if err == nil {
		a.Spec.Scope, err = argoScope(in.Metadata.Annotations)
	}
	if err == nil {
		a.Spec.Rollout, err = ParseRolloutAnnotation(in.Metadata.Annotations)
	}
	slices.Sort(n.list)
	if err != nil {
		return nil, n.list, fmt.Errorf("%s: Application %s: %w", file, in.Metadata.Name, err)
	}
	if !ok {
		return nil, n.list, nil
	}
	return a, n.list, nil
}

func convertArgoSpec(n *notes, in argoSpec, out *Spec) (bool, error) {
	out.Project = in.Project
	if in.Info != nil {
		n.add("spec.info", "not supported; ignored")
	}
	if in.RevisionHistoryLimit != nil {
		n.add("spec.revisionHistoryLimit", "not supported; ignored")
	}
	if in.SourceHydrator != nil {
		return false, invalidf("spec.sourceHydrator: source hydration is not supported")
	}
	src, field := in.Source, "spec.source"
	switch {
	case src != nil && len(in.Sources) > 0:
		return false, invalidf("spec: set source or sources, not both")
	case len(in.Sources) == 1:
		src, field = &in.Sources[0], "spec.sources[0]"
	case len(in.Sources) > 1:
		src = nil
		for i, in := range in.Sources {
			f := fmt.Sprintf("spec.sources[%d]", i)
			s, err := convertArgoSource(n, f, in)
			if err != nil {
				return false, err
			}
			s.Ref, s.Name = in.Ref, in.Name
			out.Sources = append(out.Sources, s)
		}
	case src == nil:
		return false, invalidf("spec.source is missing")
	}
	if src != nil {
		s, err := convertArgoSource(n, field, *src)
		if err != nil {
			return false, err
		}
		if src.Ref != "" {
			n.add(field+".ref", "only used by multiple sources; ignored")
		}
		if src.Name != "" {
			n.add(field+".name", "ignored")
		}
		out.Source = s
	}

	d := in.Destination
	out.Destination.Namespace = d.Namespace
	switch {
	case d.Name != "":
		out.Destination.Clusters = []string{d.Name}
		if d.Server != "" {
			n.add("spec.destination.server", "ignored; the cluster is spec.destination.name %q", d.Name)
		}
	case strings.HasPrefix(d.Server, ServerScheme):
		out.Destination.Clusters = []string{strings.TrimPrefix(d.Server, ServerScheme)}
	case d.Server == InClusterServer:
		// Argo CD's app-of-apps root: rendered on the hub for the
		// Applications it defines (anything else it renders is an error
		// on the app, naming the way out).
		out.Destination.Hub = true
	case d.Server != "":
		n.add("spec.destination", "server %s names no Flotilla cluster: a cluster must be named; set spec.destination.name to the cluster's name; application skipped", d.Server)
		return false, nil
	default:
		return false, invalidf("spec.destination: no name (the cluster) given")
	}

	if p := in.SyncPolicy; p != nil {
		out.SyncPolicy.SyncOptions = p.SyncOptions
		for i, o := range p.SyncOptions {
			if note := syncOptionNote(o); note != "" {
				n.add(fmt.Sprintf("spec.syncPolicy.syncOptions[%d]", i), "%s", note)
			}
		}
		if a := p.Automated; a != nil {
			if a.Enabled == nil || *a.Enabled {
				out.SyncPolicy.Automated = &Automated{Prune: a.Prune, SelfHeal: a.SelfHeal}
			}
			if a.AllowEmpty != nil {
				n.add("spec.syncPolicy.automated.allowEmpty", "not supported; ignored (an application may render no objects)")
			}
		}
		if r := p.Retry; r != nil {
			out.SyncPolicy.Retry = &Retry{Limit: r.Limit, Backoff: r.Backoff}
			if r.Refresh != nil {
				n.add("spec.syncPolicy.retry.refresh", "not supported; ignored")
			}
		}
		if p.ManagedNamespaceMetadata != nil {
			n.add("spec.syncPolicy.managedNamespaceMetadata", "not supported; ignored")
		}
	}
	for i, ig := range in.IgnoreDifferences {
		if ig.JQPathExpressions != nil {
			n.add(fmt.Sprintf("spec.ignoreDifferences[%d].jqPathExpressions", i), "jq expressions are not supported; ignored (use jsonPointers)")
			if len(ig.JSONPointers) == 0 && len(ig.ManagedFieldsManagers) == 0 {
				continue
			}
		}
		out.IgnoreDifferences = append(out.IgnoreDifferences, IgnoreDifference{
			Group: ig.Group, Kind: ig.Kind, Name: ig.Name, Namespace: ig.Namespace,
			JSONPointers: ig.JSONPointers, ManagedFieldsManagers: ig.ManagedFieldsManagers,
		})
	}
	return true, nil
}

func convertArgoSource(n *notes, field string, in argoSource) (Source, error) {
	switch {
	case in.Plugin != nil:
		return Source{}, invalidf("%s.plugin: config management plugins are not supported", field)
	}
	out := Source{RepoURL: in.RepoURL, TargetRevision: in.TargetRevision, Path: in.Path, Chart: in.Chart}
	if in.Chart != "" && !strings.Contains(in.RepoURL, "://") {
		// Argo CD names an OCI repository without its scheme.
		out.RepoURL = "oci://" + in.RepoURL
	}
	if d := in.Directory; d != nil {
		out.Directory = &Directory{Recurse: d.Recurse, Include: d.Include, Exclude: d.Exclude, Jsonnet: d.Jsonnet}
	}
	if h := in.Helm; h != nil {
		f := field + ".helm"
		if h.FileParameters != nil {
			return Source{}, invalidf("%s.fileParameters: not supported", f)
		}
		if h.Version != "" && h.Version != "v3" {
			return Source{}, invalidf("%s.version %q: only Helm v3 is supported", f, h.Version)
		}
		for name, v := range map[string]any{"passCredentials": h.PassCredentials, "ignoreMissingValueFiles": h.IgnoreMissingValueFiles, "skipTests": h.SkipTests, "skipSchemaValidation": h.SkipSchemaValidation} {
			if v != nil && !isEmpty(v) {
				n.add(f+"."+name, "not supported; ignored")
			}
		}
		out.Helm = &Helm{ValueFiles: h.ValueFiles, Values: h.Values, ValuesObject: h.ValuesObject, ReleaseName: h.ReleaseName, Parameters: h.Parameters, SkipCRDs: h.SkipCrds, Namespace: h.Namespace, KubeVersion: h.KubeVersion, APIVersions: h.APIVersions}
	}
	if k := in.Kustomize; k != nil {
		f := field + ".kustomize"
		for name, v := range map[string]any{"version": k.Version, "forceCommonLabels": k.ForceCommonLabels, "forceCommonAnnotations": k.ForceCommonAnnotations, "commonAnnotationsEnvsubst": k.CommonAnnotationsEnvsubst, "labelWithoutSelector": k.LabelWithoutSelector, "labelIncludeTemplates": k.LabelIncludeTemplates, "ignoreMissingComponents": k.IgnoreMissingComponents, "kubeVersion": k.KubeVersion, "apiVersions": k.APIVersions} {
			if v != nil && !isEmpty(v) {
				n.add(f+"."+name, "not supported; ignored")
			}
		}
		out.Kustomize = &Kustomize{NamePrefix: k.NamePrefix, NameSuffix: k.NameSuffix, Namespace: k.Namespace, Images: k.Images, CommonLabels: k.CommonLabels, CommonAnnotations: k.CommonAnnotations, Replicas: k.Replicas, Patches: k.Patches, Components: k.Components}
	}
	return out, nil
}

// isEmpty reports whether a decoded JSON value is a zero value (false, "",
// 0, {} or []), which Argo CD treats as unset.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case float64:
		return x == 0
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func nameOf(m map[string]any) string {
	md, _ := m["metadata"].(map[string]any)
	s, _ := md["name"].(string)
	return s
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// argoScope reads the scope of an Argo CD Application, which has no field
// for it, from its annotations.
func argoScope(ann map[string]string) (*Scope, error) {
	var sc Scope
	if v, ok := ann[manifest.ScopeNamespacesAnnotation]; ok {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				sc.Namespaces = append(sc.Namespaces, p)
			}
		}
	}
	if v, ok := ann[manifest.ScopeClusterAnnotation]; ok {
		switch strings.TrimSpace(v) {
		case "true":
			sc.ClusterScoped = true
		case "false", "":
		default:
			return nil, invalidf("metadata.annotations[%s]: %q is not true or false", manifest.ScopeClusterAnnotation, v)
		}
	}
	if len(sc.Namespaces) == 0 && !sc.ClusterScoped {
		return nil, nil
	}
	return &sc, nil
}

// syncOptionNote says how Flotilla differs on an Argo CD sync option, or
// "" when it honours it as Argo CD does (docs/argocd-sync-parity.md).
func syncOptionNote(opt string) string {
	k, v, _ := strings.Cut(opt, "=")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	switch k {
	case "CreateNamespace", "PruneLast", "Replace", "Force", "RespectIgnoreDifferences",
		"SkipDryRunOnMissingResource", "PrunePropagationPolicy":
		return ""
	case "ApplyOutOfSyncOnly", "ServerSideApply", "FailOnSharedResource":
		if strings.EqualFold(v, "false") {
			return fmt.Sprintf("%s=false is not supported: the agent always behaves as if it were true; ignored", k)
		}
		return ""
	case "Validate":
		if strings.EqualFold(v, "false") {
			return "Validate=false has no effect: server-side apply always refuses fields the API server's schema does not declare"
		}
		return ""
	}
	return fmt.Sprintf("unknown sync option %q; ignored", opt)
}
