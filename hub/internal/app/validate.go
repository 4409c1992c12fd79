package app

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Validate checks an application. Errors wrap ErrInvalid and read
// "<file>: Application <name>: <field>: <problem>".
func Validate(a *Application) error {
	if err := validateApp(a); err != nil {
		return fmt.Errorf("%s: Application %s: %w", a.File, a.Name, err)
	}
	return nil
}

func validateApp(a *Application) error {
	if err := validName(a.Name); err != nil {
		return invalidf("metadata.name: %v", err)
	}
	s := a.Spec
	if s.Project != "" {
		if err := validName(s.Project); err != nil {
			return invalidf("spec.project: %v", err)
		}
	}
	if err := validateSources(s); err != nil {
		return err
	}
	d := s.Destination
	if d.Hub {
		if len(d.Clusters) > 0 || d.ClusterSelector != nil {
			return invalidf("spec.destination: hub and clusters or clusterSelector: an app either defines apps on the hub or deploys to clusters")
		}
		if len(s.ClusterOverrides) > 0 {
			return invalidf("spec.clusterOverrides: an app whose destination is the hub has no clusters to override")
		}
	} else if len(d.Clusters) == 0 && d.ClusterSelector == nil {
		return invalidf("spec.destination: no clusters and no clusterSelector")
	}
	if err := validateTargeting("spec.destination", d.Clusters, d.ClusterSelector); err != nil {
		return err
	}
	if d.Namespace != "" {
		if errs := validation.IsDNS1123Label(d.Namespace); len(errs) > 0 {
			return invalidf("spec.destination.namespace %q: %s", d.Namespace, strings.Join(errs, "; "))
		}
	}
	if sc := s.Scope; sc != nil {
		for i, p := range sc.Namespaces {
			if err := manifest.ValidNamespacePattern(p); err != nil {
				return invalidf("spec.scope.namespaces[%d]: %v", i, err)
			}
		}
	}
	for i, o := range s.ClusterOverrides {
		f := fmt.Sprintf("spec.clusterOverrides[%d]", i)
		if len(o.Clusters) == 0 && o.ClusterSelector == nil {
			return invalidf("%s: no clusters and no clusterSelector", f)
		}
		if err := validateTargeting(f, o.Clusters, o.ClusterSelector); err != nil {
			return err
		}
		if err := ValidatePath(o.Path); err != nil {
			return invalidf("%s.path: %v", f, err)
		}
		if err := validateKinds(f, o.Directory, o.Helm, o.Kustomize); err != nil {
			return err
		}
		if err := validateKinds(f+" over spec.source", first(o.Directory, s.Source.Directory), first(o.Helm, s.Source.Helm), first(o.Kustomize, s.Source.Kustomize)); err != nil {
			return err
		}
		if err := validateParts(f, o.Directory, o.Helm, o.Kustomize); err != nil {
			return err
		}
	}
	if err := validateSyncPolicy(s.SyncPolicy); err != nil {
		return err
	}
	if err := ValidateRollout("spec.rollout", s.Rollout); err != nil {
		return err
	}
	for i, ig := range s.IgnoreDifferences {
		f := fmt.Sprintf("spec.ignoreDifferences[%d]", i)
		if ig.Kind == "" {
			return invalidf("%s.kind is missing", f)
		}
		if len(ig.JSONPointers) == 0 && len(ig.ManagedFieldsManagers) == 0 {
			return invalidf("%s: neither jsonPointers nor managedFieldsManagers", f)
		}
		for j, p := range ig.JSONPointers {
			if !strings.HasPrefix(p, "/") {
				return invalidf("%s.jsonPointers[%d] %q: a JSON pointer starts with /", f, j, p)
			}
		}
	}
	return nil
}

// validateSources checks spec.source, or spec.sources with their refs.
func validateSources(s Spec) error {
	if len(s.Sources) == 0 {
		if s.Source.Ref != "" {
			return invalidf("spec.source.ref: a ref names one of spec.sources; a single source has no other to lend files to")
		}
		return validateSource("spec.source", s.Source)
	}
	if s.Source.RepoURL != "" || s.Source.Path != "" {
		return invalidf("spec: set source or sources, not both")
	}
	if len(s.ClusterOverrides) > 0 {
		return invalidf("spec.clusterOverrides: not supported with spec.sources (they change the one source of an app)")
	}
	refs := map[string]int{}
	rendered := 0
	for i, src := range s.Sources {
		f := fmt.Sprintf("spec.sources[%d]", i)
		if err := validateSource(f, src); err != nil {
			return err
		}
		if src.Ref != "" {
			if errs := validation.IsDNS1123Label(src.Ref); len(errs) > 0 {
				return invalidf("%s.ref %q: %s", f, src.Ref, strings.Join(errs, "; "))
			}
			if j, dup := refs[src.Ref]; dup {
				return invalidf("%s.ref %q: already the ref of spec.sources[%d]", f, src.Ref, j)
			}
			refs[src.Ref] = i
		}
		if src.Rendered() {
			rendered++
		}
	}
	if rendered == 0 {
		return invalidf("spec.sources: every source is a ref without a path; nothing is rendered")
	}
	for i, src := range s.Sources {
		if src.Helm == nil {
			continue
		}
		for j, vf := range src.Helm.ValueFiles {
			ref, ok := ValueFileRef(vf)
			if !ok {
				continue
			}
			if _, known := refs[ref]; !known {
				return invalidf("spec.sources[%d].helm.valueFiles[%d] %q: no source has ref %q", i, j, vf, ref)
			}
		}
	}
	return nil
}

// ValueFileRef returns the ref a Helm value file names ("$values/a.yaml"
// names "values"); ok is false for a path in the chart's own repository.
func ValueFileRef(vf string) (ref string, ok bool) {
	if !strings.HasPrefix(vf, "$") {
		return "", false
	}
	ref, _, _ = strings.Cut(vf[1:], "/")
	return ref, true
}

func validateSource(f string, src Source) error {
	if src.RepoURL == "" {
		return invalidf("%s.repoURL is missing", f)
	}
	if err := ValidatePath(src.Path); err != nil {
		return invalidf("%s.path: %v", f, err)
	}
	if src.Chart != "" {
		switch {
		case strings.ContainsAny(src.Chart, "/\\") || src.Chart == "." || src.Chart == "..":
			return invalidf("%s.chart %q: a chart name, not a path", f, src.Chart)
		case src.Path != "":
			return invalidf("%s: chart and path: a chart from a Helm repository has no path", f)
		case src.Directory != nil || src.Kustomize != nil:
			return invalidf("%s: chart with directory or kustomize: a chart renders with helm", f)
		case !strings.HasPrefix(src.RepoURL, "https://") && !strings.HasPrefix(src.RepoURL, "http://") && !strings.HasPrefix(src.RepoURL, "oci://"):
			return invalidf("%s.repoURL %q: a Helm repository is https://... (with an index.yaml) or oci://host/path", f, src.RepoURL)
		}
	}
	if err := validateKinds(f, src.Directory, src.Helm, src.Kustomize); err != nil {
		return err
	}
	return validateParts(f, src.Directory, src.Helm, src.Kustomize)
}

func first[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// ValidatePath checks a source path: relative, clean of "..", and not
// leaving the repository. Template actions are allowed; the templated path
// is checked again per cluster.
func ValidatePath(p string) error {
	if p == "" {
		return nil
	}
	if path.IsAbs(p) || strings.HasPrefix(p, "\\") {
		return fmt.Errorf("%q is absolute; paths are relative to the repository root", p)
	}
	if c := path.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%q leaves the repository", p)
	}
	return nil
}

func validName(n string) error {
	if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
		return fmt.Errorf("%q: %s", n, strings.Join(errs, "; "))
	}
	return nil
}

func validateKinds(field string, d *Directory, h *Helm, k *Kustomize) error {
	n := 0
	for _, set := range []bool{d != nil, h != nil, k != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return invalidf("%s: set only one of directory, helm and kustomize", field)
	}
	return nil
}

func validateParts(field string, d *Directory, h *Helm, k *Kustomize) error {
	if d != nil {
		for name, g := range map[string]string{"include": d.Include, "exclude": d.Exclude} {
			if _, err := CompileGlob(g); err != nil {
				return invalidf("%s.directory.%s: %v", field, name, err)
			}
		}
		if j := d.Jsonnet; j != nil {
			for kind, vars := range map[string][]JsonnetVar{"extVars": j.ExtVars, "tlas": j.TLAs} {
				for i, v := range vars {
					if v.Name == "" {
						return invalidf("%s.directory.jsonnet.%s[%d].name is missing", field, kind, i)
					}
				}
			}
			for i, l := range j.Libs {
				if err := ValidatePath(l); err != nil {
					return invalidf("%s.directory.jsonnet.libs[%d]: %v", field, i, err)
				}
			}
		}
	}
	if h != nil {
		for i, p := range h.Parameters {
			if p.Name == "" {
				return invalidf("%s.helm.parameters[%d].name is missing", field, i)
			}
		}
		for i, f := range h.ValueFiles {
			if f == "" {
				return invalidf("%s.helm.valueFiles[%d] is empty", field, i)
			}
		}
		if h.KubeVersion != "" && !strings.Contains(h.KubeVersion, "{{") { // a template is checked by the render
			if _, err := semver.NewVersion(h.KubeVersion); err != nil {
				return invalidf("%s.helm.kubeVersion %q: not a Kubernetes version: %v", field, h.KubeVersion, err)
			}
		}
		for i, v := range h.APIVersions {
			if strings.TrimSpace(v) == "" {
				return invalidf("%s.helm.apiVersions[%d] is empty", field, i)
			}
		}
	}
	if k != nil {
		for i, img := range k.Images {
			if strings.TrimSpace(img) == "" {
				return invalidf("%s.kustomize.images[%d] is empty", field, i)
			}
		}
		for i, r := range k.Replicas {
			if r.Name == "" || r.Count < 0 {
				return invalidf("%s.kustomize.replicas[%d]: needs a name and a count >= 0", field, i)
			}
		}
		for i, p := range k.Patches {
			if (p.Path == "") == (p.Patch == "") {
				return invalidf("%s.kustomize.patches[%d]: set exactly one of path and patch", field, i)
			}
		}
	}
	return nil
}

func validateTargeting(field string, clusters []string, sel *metav1.LabelSelector) error {
	for i, c := range clusters {
		if err := validName(c); err != nil {
			return invalidf("%s.clusters[%d]: %v", field, i, err)
		}
	}
	if sel != nil {
		if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
			return invalidf("%s.clusterSelector: %v", field, err)
		}
	}
	return nil
}

func validateSyncPolicy(p SyncPolicy) error {
	for i, o := range p.SyncOptions {
		if k, _, ok := strings.Cut(o, "="); !ok || k == "" {
			return invalidf("spec.syncPolicy.syncOptions[%d] %q: expected Name=value", i, o)
		}
	}
	if p.Retry == nil || p.Retry.Backoff == nil {
		return nil
	}
	b := p.Retry.Backoff
	for name, d := range map[string]string{"duration": b.Duration, "maxDuration": b.MaxDuration} {
		if d == "" {
			continue
		}
		if _, err := time.ParseDuration(d); err != nil {
			return invalidf("spec.syncPolicy.retry.backoff.%s: %v", name, err)
		}
	}
	if b.Factor != nil && *b.Factor < 1 {
		return invalidf("spec.syncPolicy.retry.backoff.factor %d: must be at least 1", *b.Factor)
	}
	return nil
}

func validateCluster(c ClusterDecl) error {
	if err := validName(c.Name); err != nil {
		return invalidf("metadata.name: %v", err)
	}
	for k, v := range c.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return invalidf("label %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return invalidf("label %s=%q: %s", k, v, strings.Join(errs, "; "))
		}
	}
	return nil
}
