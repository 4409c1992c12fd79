package app

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// API group, version and kinds of Flotilla's own definitions.
const (
	Group          = "flotilla.dev"
	Version        = "v1alpha1"
	APIVersion     = Group + "/" + Version
	KindApp        = "Application"
	KindCluster    = "Cluster"
	ArgoAPIVersion = "argoproj.io/v1alpha1"
	KindAppSet     = "ApplicationSet"
	KindAppProject = "AppProject"
)

// Application is one application: what to render and which clusters get it.
type Application struct {
	Name string `json:"name"`
	Spec Spec   `json:"spec"`
	// Set names the ApplicationSet that generated the application.
	Set string `json:"set,omitempty"`
	// Parent names the application whose render defined this one
	// (app-of-apps); it is removed with its parent.
	Parent string `json:"parent,omitempty"`
	// File is where the application was defined, relative to the folder
	// it was loaded from (or as given to Decode).
	File string `json:"file"`
}

// Spec is an application's desired state.
type Spec struct {
	// Project names the Project (flotilla.dev Project or Argo CD
	// AppProject) whose rules the app is held to; empty means "default"
	// (see ProjectName).
	Project string `json:"project,omitempty"`
	// Source is the one source of a single-source app; empty when Sources
	// is set (see AllSources).
	Source Source `json:"source,omitzero"`
	// Sources are the sources of a multi-source app, as Argo CD's
	// spec.sources: each is rendered and the objects concatenated; a
	// source with Ref lends its repository's files to the others' Helm
	// valueFiles ("$ref/path").
	Sources           []Source           `json:"sources,omitempty"`
	Destination       Destination        `json:"destination"`
	ClusterOverrides  []ClusterOverride  `json:"clusterOverrides,omitempty"`
	SyncPolicy        SyncPolicy         `json:"syncPolicy,omitempty"`
	IgnoreDifferences []IgnoreDifference `json:"ignoreDifferences,omitempty"`
	// Scope widens where the app's objects may go. Without it an app may
	// put namespaced objects only in its destination namespace and may not
	// create cluster-scoped objects.
	Scope *Scope `json:"scope,omitempty"`
	// Rollout moves a new revision through the app's clusters in steps
	// (see Rollout); nil: the project's default, or every cluster at once.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Scope is an app's tenancy boundary beyond its destination namespace.
type Scope struct {
	// Namespaces are further namespaces the app may use, as shell globs
	// ("team-a-*"; "*" is every namespace).
	Namespaces []string `json:"namespaces,omitempty"`
	// ClusterScoped lets the app create cluster-scoped objects.
	ClusterScoped bool `json:"clusterScoped,omitempty"`
}

// Source says where the manifests come from and how they are rendered. At
// most one of Directory, Helm and Kustomize is set; with none set, the kind
// is detected from the files at Path (Chart.yaml: Helm; kustomization.yaml,
// kustomization.yml or Kustomization: Kustomize; otherwise a directory).
type Source struct {
	RepoURL string `json:"repoURL"`
	// TargetRevision is a branch, tag or commit; empty means HEAD.
	TargetRevision string `json:"targetRevision,omitempty"`
	// Path is relative to the repository root; empty means the root.
	Path      string     `json:"path,omitempty"`
	Directory *Directory `json:"directory,omitempty"`
	Helm      *Helm      `json:"helm,omitempty"`
	Kustomize *Kustomize `json:"kustomize,omitempty"`
	// Ref names this source (in spec.sources only) so that another
	// source's helm.valueFiles can read its files as "$<ref>/<path>"
	// (relative to the repository root). A source with a ref and no path
	// only lends files; with a path it is also rendered.
	Ref string `json:"ref,omitempty"`
	// Name labels the source (in spec.sources only), for people.
	Name string `json:"name,omitempty"`
	// Chart names a chart in the Helm repository RepoURL (https://... with
	// an index.yaml, or oci://host/path); TargetRevision is then its
	// version or a semver constraint ("1.2.x", "^1.2.0"; empty: the
	// newest release). Path is not used; Helm gives values and options.
	Chart string `json:"chart,omitempty"`
}

// DefaultProject is the project of an app that names none. When no
// definition declares it, it allows everything (as Argo CD's own default
// project does).
const DefaultProject = "default"

// ProjectName is the app's project: Project, or DefaultProject when empty.
func (s Spec) ProjectName() string {
	if s.Project == "" {
		return DefaultProject
	}
	return s.Project
}

// IsChart reports whether the source is a chart from a Helm repository.
func (s Source) IsChart() bool { return s.Chart != "" }

// AllSources returns the app's sources: Sources when set, else the one
// Source.
func (s Spec) AllSources() []Source {
	if len(s.Sources) > 0 {
		return s.Sources
	}
	return []Source{s.Source}
}

// Rendered reports whether the source is rendered: every source but a
// multi-source app's ref source without a path.
func (s Source) Rendered() bool {
	return s.Ref == "" || s.Path != "" || s.Chart != ""
}

// Directory renders the YAML and JSON files of a folder.
type Directory struct {
	Recurse bool `json:"recurse,omitempty"`
	// Include and Exclude are globs matched against the path relative to
	// Source.Path, Argo CD style: '*' also crosses '/', '{a,b}' is an
	// alternative, '?' and '[...]' as usual.
	Include string `json:"include,omitempty"`
	Exclude string `json:"exclude,omitempty"`
	// Jsonnet sets how the folder's *.jsonnet files are evaluated (they
	// are evaluated with or without it; *.libsonnet files are only
	// imported).
	Jsonnet *Jsonnet `json:"jsonnet,omitempty"`
}

// Jsonnet are the inputs of Jsonnet evaluation, as Argo CD names them.
type Jsonnet struct {
	ExtVars []JsonnetVar `json:"extVars,omitempty"`
	TLAs    []JsonnetVar `json:"tlas,omitempty"`
	// Libs are folders (relative to the repository root) searched for
	// imports not found beside the importing file.
	Libs []string `json:"libs,omitempty"`
}

// JsonnetVar is an external variable or top-level argument: a string, or
// Jsonnet code when Code is set.
type JsonnetVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Code  bool   `json:"code,omitempty"`
}

// Helm renders a chart stored in the repository, as `helm template` does.
type Helm struct {
	// ValueFiles are relative to the chart folder and must stay inside the
	// repository.
	ValueFiles []string `json:"valueFiles,omitempty"`
	// Values is a YAML document merged over the value files.
	Values string `json:"values,omitempty"`
	// ValuesObject is merged over Values.
	ValuesObject map[string]any `json:"valuesObject,omitempty"`
	// ReleaseName defaults to the application name.
	ReleaseName string          `json:"releaseName,omitempty"`
	Parameters  []HelmParameter `json:"parameters,omitempty"`
	// SkipCRDs leaves out the chart's crds/ folder.
	SkipCRDs bool `json:"skipCrds,omitempty"`
	// Namespace overrides the release namespace (default: the destination
	// namespace).
	Namespace string `json:"namespace,omitempty"`
	// KubeVersion, when set, replaces the Kubernetes version the cluster
	// reported as the chart's .Capabilities.KubeVersion (and for its
	// Chart.yaml kubeVersion check), as Argo CD's helm.kubeVersion.
	KubeVersion string `json:"kubeVersion,omitempty"`
	// APIVersions, when set, replace the API versions the cluster reported
	// as the chart's .Capabilities.APIVersions ("group/version" or
	// "group/version/Kind"), as Argo CD's helm.apiVersions.
	APIVersions []string `json:"apiVersions,omitempty"`
}

// HelmParameter is a --set (or --set-string with ForceString) value, applied
// after all values.
type HelmParameter struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	ForceString bool   `json:"forceString,omitempty"`
}

// Kustomize changes a kustomization before it is built, as Argo CD's
// `kustomize edit` does: prefix, suffix and namespace replace the
// kustomization's own, images and replicas are set by name, labels and
// annotations are added, patches and components appended.
type Kustomize struct {
	NamePrefix        string             `json:"namePrefix,omitempty"`
	NameSuffix        string             `json:"nameSuffix,omitempty"`
	Namespace         string             `json:"namespace,omitempty"`
	Images            []string           `json:"images,omitempty"`
	CommonLabels      map[string]string  `json:"commonLabels,omitempty"`
	CommonAnnotations map[string]string  `json:"commonAnnotations,omitempty"`
	Replicas          []KustomizeReplica `json:"replicas,omitempty"`
	Patches           []KustomizePatch   `json:"patches,omitempty"`
	Components        []string           `json:"components,omitempty"`
}

// KustomizeReplica sets the replica count of the workload named Name.
type KustomizeReplica struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// KustomizePatch is a kustomize patch (inline or a file in the repository).
type KustomizePatch struct {
	Path    string          `json:"path,omitempty"`
	Patch   string          `json:"patch,omitempty"`
	Target  *PatchTarget    `json:"target,omitempty"`
	Options map[string]bool `json:"options,omitempty"`
}

// PatchTarget selects the objects a KustomizePatch applies to.
type PatchTarget struct {
	Group              string `json:"group,omitempty"`
	Version            string `json:"version,omitempty"`
	Kind               string `json:"kind,omitempty"`
	Name               string `json:"name,omitempty"`
	Namespace          string `json:"namespace,omitempty"`
	LabelSelector      string `json:"labelSelector,omitempty"`
	AnnotationSelector string `json:"annotationSelector,omitempty"`
}

// Destination says which clusters get the application and its default
// namespace. A cluster is a target when it is named in Clusters or its
// labels match ClusterSelector (an empty selector {} matches every cluster).
type Destination struct {
	Namespace       string                `json:"namespace,omitempty"`
	Clusters        []string              `json:"clusters,omitempty"`
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	// Hub: the app is rendered on the hub only, for the Applications and
	// ApplicationSets it defines (the root of Argo CD's app-of-apps); it
	// sends nothing to any cluster. Argo CD's in-cluster server maps to it.
	Hub bool `json:"hub,omitempty"`
}

// ClusterOverride changes the source for the clusters it matches (by name
// or selector). The first matching override wins; see target.Effective.
type ClusterOverride struct {
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	Clusters        []string              `json:"clusters,omitempty"`
	Path            string                `json:"path,omitempty"`
	TargetRevision  string                `json:"targetRevision,omitempty"`
	Helm            *Helm                 `json:"helm,omitempty"`
	Kustomize       *Kustomize            `json:"kustomize,omitempty"`
	Directory       *Directory            `json:"directory,omitempty"`
}

// SyncPolicy is Argo CD's sync policy.
type SyncPolicy struct {
	Automated   *Automated `json:"automated,omitempty"`
	SyncOptions []string   `json:"syncOptions,omitempty"`
	Retry       *Retry     `json:"retry,omitempty"`
}

// Automated enables automatic sync; Prune deletes objects that left git and
// SelfHeal reverts out-of-band changes.
type Automated struct {
	Prune    bool `json:"prune,omitempty"`
	SelfHeal bool `json:"selfHeal,omitempty"`
}

// Retry bounds retries of a failed sync.
type Retry struct {
	Limit   int64    `json:"limit,omitempty"`
	Backoff *Backoff `json:"backoff,omitempty"`
}

// Backoff is the retry backoff; durations are Go durations ("5s", "3m").
type Backoff struct {
	Duration    string `json:"duration,omitempty"`
	Factor      *int64 `json:"factor,omitempty"`
	MaxDuration string `json:"maxDuration,omitempty"`
}

// IgnoreDifference leaves fields of matching objects out of drift detection.
type IgnoreDifference struct {
	Group                 string   `json:"group,omitempty"`
	Kind                  string   `json:"kind"`
	Name                  string   `json:"name,omitempty"`
	Namespace             string   `json:"namespace,omitempty"`
	JSONPointers          []string `json:"jsonPointers,omitempty"`
	ManagedFieldsManagers []string `json:"managedFieldsManagers,omitempty"`
}

// Cluster is a cluster as targeting sees it: a name and labels.
// target.Cluster is the same type.
type Cluster struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// ClusterDecl is a `kind: Cluster` declaration found in git. Its labels are
// metadata.labels with spec.labels merged over them.
type ClusterDecl struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	File   string            `json:"file"`
}

// Definitions is what a file or folder of definitions holds. Warnings name
// the file, document and field of everything that was accepted but not
// fully honoured.
type Definitions struct {
	Apps     []*Application `json:"apps,omitempty"`
	AppSets  []*AppSet      `json:"appSets,omitempty"`
	Clusters []ClusterDecl  `json:"clusters,omitempty"`
	Projects []*Project     `json:"projects,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	// Broken are the definitions that could not be used. Each stands or
	// falls alone: the others of the same file and commit take effect.
	Broken []Broken `json:"broken,omitempty"`
}

// Broken is a definition that could not be used, with the error naming the
// file, document and field. Kind and Name are empty when the document is
// not readable enough to tell.
type Broken struct {
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name,omitempty"`
	File  string `json:"file"`
	Error string `json:"error"`
	err   error
}

func newBroken(kind, name, file string, err error) Broken {
	return Broken{Kind: kind, Name: name, File: file, Error: err.Error(), err: err}
}

// Err joins the errors of the broken definitions (nil when there are none).
func (d Definitions) Err() error {
	errs := make([]error, 0, len(d.Broken))
	for _, b := range d.Broken {
		if b.err == nil {
			b.err = fmt.Errorf("%w: %s", ErrInvalid, b.Error)
		}
		errs = append(errs, b.err)
	}
	return errors.Join(errs...)
}
