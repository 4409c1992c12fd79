package project

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// ErrForbidden is wrapped by every refusal of a project rule.
var ErrForbidden = errors.New("forbidden by project")

// ErrNoProject is wrapped when an app names a project that is not defined.
var ErrNoProject = errors.New("project does not exist")

// Policy is a compiled project. The zero Policy is not usable; use
// Compile or AllowAll.
type Policy struct {
	Name string
	// all: the implicit default project, which allows everything.
	all          bool
	repos        globs
	dests        []dest
	clusterWhite []gk
	clusterBlack []gk
	nsWhite      []gk
	nsBlack      []gk
	windows      []window
	// Orphaned is the project's orphanedResources as the agents get it
	// (nil: no monitoring): its ignore list plus the namespaced kinds the
	// project denies, which are never orphaned, as in Argo CD.
	Orphaned *apiv1alpha1.OrphanedResources
	// Rollout is the project's default rollout strategy (nil: none).
	Rollout *app.Rollout
}

// AllowAll is the policy of the implicit project name (app.DefaultProject
// when no definition declares it): no restriction, no sync window.
func AllowAll(name string) *Policy { return &Policy{Name: name, all: true} }

// globs are allow and deny ('!') patterns: a value passes when an allow
// matches it and no deny does.
type globs struct {
	allow, deny []*regexp.Regexp
}

func compileGlobs(patterns []string) (globs, error) {
	var g globs
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		re, err := app.CompileGlob(strings.TrimPrefix(p, "!"))
		if err != nil {
			return g, err
		}
		if re == nil {
			re = regexp.MustCompile(`^$`)
		}
		if neg {
			g.deny = append(g.deny, re)
		} else {
			g.allow = append(g.allow, re)
		}
	}
	return g, nil
}

// denied reports whether a deny pattern matches s.
func (g globs) denied(s string) bool {
	for _, re := range g.deny {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// allowed reports whether an allow pattern matches s.
func (g globs) allowed(s string) bool {
	for _, re := range g.allow {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

type dest struct {
	index     int
	clusters  globs
	selector  labels.Selector // nil: not by labels
	namespace globs
	hub       bool
}

// matchesCluster reports whether d allows cluster c, and whether it
// explicitly denies it.
func (d dest) matchesCluster(c app.Cluster) (allow, deny bool) {
	if d.clusters.denied(c.Name) {
		return false, true
	}
	if d.clusters.allowed(c.Name) {
		return true, false
	}
	if d.selector != nil && d.selector.Matches(labels.Set(c.Labels)) {
		return true, false
	}
	return false, false
}

type gk struct {
	group, kind *regexp.Regexp
	text        string
}

func compileGKs(in []app.GroupKind) ([]gk, error) {
	out := make([]gk, 0, len(in))
	for _, x := range in {
		g, err := app.CompileGlob(x.Group)
		if err != nil {
			return nil, err
		}
		if g == nil {
			g = regexp.MustCompile(`^$`)
		}
		k, err := app.CompileGlob(x.Kind)
		if err != nil {
			return nil, err
		}
		out = append(out, gk{group: g, kind: k, text: x.String()})
	}
	return out, nil
}

// match returns the first rule matching (group, kind), or "".
func matchGK(list []gk, group, kind string) (string, bool) {
	for _, r := range list {
		if r.group.MatchString(group) && r.kind != nil && r.kind.MatchString(kind) {
			return r.text, true
		}
	}
	return "", false
}

// Compile compiles a project definition (validated by app.ValidateProject).
func Compile(p *app.Project) (*Policy, error) {
	s := p.Spec
	out := &Policy{Name: p.Name, Rollout: s.Rollout}
	var err error
	if out.repos, err = compileGlobs(s.SourceRepos); err != nil {
		return nil, fmt.Errorf("project %s: spec.sourceRepos: %w", p.Name, err)
	}
	for i, d := range s.Destinations {
		cd := dest{index: i, hub: d.Hub}
		if cd.clusters, err = compileGlobs(d.Clusters); err != nil {
			return nil, fmt.Errorf("project %s: spec.destinations[%d].clusters: %w", p.Name, i, err)
		}
		if d.ClusterSelector != nil {
			if cd.selector, err = metav1.LabelSelectorAsSelector(d.ClusterSelector); err != nil {
				return nil, fmt.Errorf("project %s: spec.destinations[%d].clusterSelector: %w", p.Name, i, err)
			}
		}
		if cd.namespace, err = compileGlobs([]string{d.Namespace}); err != nil {
			return nil, fmt.Errorf("project %s: spec.destinations[%d].namespace: %w", p.Name, i, err)
		}
		out.dests = append(out.dests, cd)
	}
	for _, l := range []struct {
		in  []app.GroupKind
		out *[]gk
	}{
		{s.ClusterResourceWhitelist, &out.clusterWhite}, {s.ClusterResourceBlacklist, &out.clusterBlack},
		{s.NamespaceResourceWhitelist, &out.nsWhite}, {s.NamespaceResourceBlacklist, &out.nsBlack},
	} {
		if *l.out, err = compileGKs(l.in); err != nil {
			return nil, fmt.Errorf("project %s: %w", p.Name, err)
		}
	}
	for i, w := range s.SyncWindows {
		cw, err := compileWindow(i, w)
		if err != nil {
			return nil, fmt.Errorf("project %s: spec.syncWindows[%d]: %w", p.Name, i, err)
		}
		out.windows = append(out.windows, cw)
	}
	out.Orphaned = orphaned(s)
	return out, nil
}

func (p *Policy) forbidden(format string, args ...any) error {
	return fmt.Errorf("project %s: %w: %s", p.Name, ErrForbidden, fmt.Sprintf(format, args...))
}

// CheckSources refuses an app with a source repository that
// spec.sourceRepos does not allow.
func (p *Policy) CheckSources(a *app.Application) error {
	if p.all {
		return nil
	}
	for i, src := range a.Spec.AllSources() {
		field := "spec.source"
		if len(a.Spec.Sources) > 0 {
			field = fmt.Sprintf("spec.sources[%d]", i)
		}
		switch {
		case p.repos.denied(src.RepoURL):
			return p.forbidden("%s.repoURL %s is denied by spec.sourceRepos", field, src.RepoURL)
		case !p.repos.allowed(src.RepoURL):
			return p.forbidden("%s.repoURL %s is not allowed by spec.sourceRepos", field, src.RepoURL)
		}
	}
	return nil
}

// CheckRepo refuses a repository spec.sourceRepos does not allow (a
// kustomization's remote base: the project bounds what an app's files
// may make the hub fetch, as it bounds its sources).
func (p *Policy) CheckRepo(repoURL string) error {
	switch {
	case p.all:
		return nil
	case p.repos.denied(repoURL):
		return p.forbidden("repository %s is denied by spec.sourceRepos", repoURL)
	case !p.repos.allowed(repoURL):
		return p.forbidden("repository %s is not allowed by spec.sourceRepos", repoURL)
	}
	return nil
}

// CheckHub refuses an app whose destination is the hub (an app-of-apps
// root) unless a destination allows the hub.
func (p *Policy) CheckHub() error {
	if p.all {
		return nil
	}
	for _, d := range p.dests {
		if d.hub {
			return nil
		}
	}
	return p.forbidden("destination hub (Argo CD's in-cluster server) is not allowed by spec.destinations")
}

// CheckDestination refuses a (cluster, namespace) that spec.destinations
// does not allow: some destination must allow the cluster and the
// namespace, and none may deny either. namespace "" is a cluster-scoped
// object's, which needs only the cluster.
func (p *Policy) CheckDestination(c app.Cluster, namespace string) error {
	if p.all {
		return nil
	}
	clusterOK := false
	for _, d := range p.dests {
		allow, deny := d.matchesCluster(c)
		if deny {
			return p.forbidden("cluster %s is denied by spec.destinations[%d]", c.Name, d.index)
		}
		if !allow {
			continue
		}
		clusterOK = true
		if namespace == "" {
			continue
		}
		if d.namespace.denied(namespace) {
			return p.forbidden("namespace %s on cluster %s is denied by spec.destinations[%d]", namespace, c.Name, d.index)
		}
	}
	if !clusterOK {
		return p.forbidden("cluster %s is not allowed by spec.destinations", c.Name)
	}
	if namespace == "" {
		return nil
	}
	for _, d := range p.dests {
		if allow, _ := d.matchesCluster(c); allow && d.namespace.allowed(namespace) {
			return nil
		}
	}
	return p.forbidden("namespace %s on cluster %s is not allowed by spec.destinations", namespace, c.Name)
}

// CheckKind refuses a kind the resource lists do not allow: a
// cluster-scoped kind must be in clusterResourceWhitelist and not in
// clusterResourceBlacklist; a namespaced kind must be in
// namespaceResourceWhitelist when it is set, and not in
// namespaceResourceBlacklist.
func (p *Policy) CheckKind(group, kind string, namespaced bool) error {
	if p.all {
		return nil
	}
	name := kind
	if group != "" {
		name = group + "/" + kind
	}
	if !namespaced {
		if rule, ok := matchGK(p.clusterBlack, group, kind); ok {
			return p.forbidden("cluster-scoped kind %s is in spec.clusterResourceBlacklist (%s)", name, rule)
		}
		if _, ok := matchGK(p.clusterWhite, group, kind); !ok {
			return p.forbidden("cluster-scoped kind %s is not in spec.clusterResourceWhitelist", name)
		}
		return nil
	}
	if rule, ok := matchGK(p.nsBlack, group, kind); ok {
		return p.forbidden("kind %s is in spec.namespaceResourceBlacklist (%s)", name, rule)
	}
	if len(p.nsWhite) > 0 {
		if _, ok := matchGK(p.nsWhite, group, kind); !ok {
			return p.forbidden("kind %s is not in spec.namespaceResourceWhitelist", name)
		}
	}
	return nil
}

// orphaned is the wire form of s.OrphanedResources: its ignore list, the
// namespaced kinds s denies (blacklist) as ignored, and its namespaced
// whitelist as the only kinds that count.
func orphaned(s app.ProjectSpec) *apiv1alpha1.OrphanedResources {
	o := s.OrphanedResources
	if o == nil {
		return nil
	}
	out := &apiv1alpha1.OrphanedResources{Warn: o.Warn}
	for _, k := range o.Ignore {
		out.Ignore = append(out.Ignore, &apiv1alpha1.OrphanedKey{Group: k.Group, Kind: k.Kind, Name: k.Name})
	}
	for _, k := range s.NamespaceResourceBlacklist {
		out.Ignore = append(out.Ignore, &apiv1alpha1.OrphanedKey{Group: k.Group, Kind: k.Kind})
	}
	for _, k := range s.NamespaceResourceWhitelist {
		out.Kinds = append(out.Kinds, &apiv1alpha1.OrphanedKey{Group: k.Group, Kind: k.Kind})
	}
	return out
}
