package app

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindProject is the kind of Flotilla's project definition.
const KindProject = "Project"

// Project is a set of rules the apps naming it (spec.project) are held to:
// where their sources may come from, where they may deploy, which kinds
// they may create, and when they may sync automatically. Field names
// follow Argo CD's AppProject.
type Project struct {
	Name string      `json:"name"`
	Spec ProjectSpec `json:"spec"`
	// File is where the project was defined.
	File string `json:"file"`
}

// ProjectSpec is a project's rules. A list left empty means Argo CD's
// default: no source repo, no destination and no cluster-scoped kind is
// allowed, every namespaced kind is.
type ProjectSpec struct {
	Description string `json:"description,omitempty"`
	// SourceRepos are globs of the repository URLs apps may use ("*":
	// any); a glob starting with '!' denies what it matches.
	SourceRepos []string `json:"sourceRepos,omitempty"`
	// Destinations are the (clusters, namespace) pairs apps may deploy
	// to; a namespaced object must be in a namespace some destination
	// matching its cluster allows.
	Destinations []ProjectDestination `json:"destinations,omitempty"`
	// ClusterResourceWhitelist lists the cluster-scoped kinds apps may
	// create (empty: none); ClusterResourceBlacklist those they may not.
	ClusterResourceWhitelist []GroupKind `json:"clusterResourceWhitelist,omitempty"`
	ClusterResourceBlacklist []GroupKind `json:"clusterResourceBlacklist,omitempty"`
	// NamespaceResourceWhitelist lists the namespaced kinds apps may
	// create (empty: all); NamespaceResourceBlacklist those they may not.
	NamespaceResourceWhitelist []GroupKind `json:"namespaceResourceWhitelist,omitempty"`
	NamespaceResourceBlacklist []GroupKind `json:"namespaceResourceBlacklist,omitempty"`
	// OrphanedResources makes the agents look for objects in the apps'
	// destination namespaces that no app manages, and report them.
	OrphanedResources *OrphanedResources `json:"orphanedResources,omitempty"`
	// SyncWindows say when apps may sync automatically.
	SyncWindows []SyncWindow `json:"syncWindows,omitempty"`
	// Rollout is the rollout strategy of the project's apps that have
	// none of their own.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// ProjectDestination is one allowed destination: clusters by name (globs,
// '!' denies) and/or label selector, and a namespace glob ('!' denies).
// Hub allows apps whose destination is the hub (Argo CD's in-cluster
// server).
type ProjectDestination struct {
	Clusters        []string              `json:"clusters,omitempty"`
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	Namespace       string                `json:"namespace,omitempty"`
	Hub             bool                  `json:"hub,omitempty"`
}

// GroupKind names a kind; both fields are globs ("*" any; "" is the core
// group).
type GroupKind struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
}

func (g GroupKind) String() string {
	if g.Group == "" {
		return g.Kind
	}
	return g.Group + "/" + g.Kind
}

// OrphanedResources is Argo CD's orphaned-resource monitoring: the
// project's apps report the orphaned objects of their destination
// namespace, and with Warn they carry a warning when there are some.
type OrphanedResources struct {
	Warn bool `json:"warn,omitempty"`
	// Ignore excludes objects from the monitoring.
	Ignore []OrphanedKey `json:"ignore,omitempty"`
}

// OrphanedKey matches objects by group, kind and name, each a shell glob
// ("" group: the core group; "" kind or name: any).
type OrphanedKey struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
}

// SyncWindow allows or denies automated syncs while it is open: from each
// time its cron Schedule fires, for Duration. It applies to the apps whose
// name matches Applications, whose destination namespace matches
// Namespaces, or whose cluster matches Clusters (globs). ManualSync lets
// people sync by hand while the window holds automated syncs.
type SyncWindow struct {
	// Kind is "allow" or "deny".
	Kind         string   `json:"kind"`
	Schedule     string   `json:"schedule"`
	Duration     string   `json:"duration"`
	Applications []string `json:"applications,omitempty"`
	Namespaces   []string `json:"namespaces,omitempty"`
	Clusters     []string `json:"clusters,omitempty"`
	ManualSync   bool     `json:"manualSync,omitempty"`
	// TimeZone is an IANA time zone name for Schedule; default UTC.
	TimeZone string `json:"timeZone,omitempty"`
	// AndOperator: the window applies only to apps that every non-empty
	// selector matches (default: any one).
	AndOperator bool `json:"andOperator,omitempty"`
}

// CronParser reads sync window schedules: five fields (minute, hour, day
// of month, month, day of week) and the @hourly style descriptors, as Argo
// CD does.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ValidateProject checks a project. Errors wrap ErrInvalid and read
// "<file>: Project <name>: <field>: <problem>".
func ValidateProject(p *Project) error {
	if err := validateProject(p); err != nil {
		return fmt.Errorf("%s: Project %s: %w", p.File, p.Name, err)
	}
	return nil
}

func validateProject(p *Project) error {
	if err := validName(p.Name); err != nil {
		return invalidf("metadata.name: %v", err)
	}
	s := p.Spec
	for i, r := range s.SourceRepos {
		if _, err := CompileGlob(strings.TrimPrefix(r, "!")); err != nil || r == "" || r == "!" {
			return invalidf("spec.sourceRepos[%d]: %q is not a glob", i, r)
		}
	}
	for i, d := range s.Destinations {
		f := fmt.Sprintf("spec.destinations[%d]", i)
		if d.ClusterSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(d.ClusterSelector); err != nil {
				return invalidf("%s.clusterSelector: %v", f, err)
			}
		}
		for j, c := range d.Clusters {
			if _, err := CompileGlob(strings.TrimPrefix(c, "!")); err != nil || c == "" {
				return invalidf("%s.clusters[%d]: %q is not a glob", f, j, c)
			}
		}
		if _, err := CompileGlob(strings.TrimPrefix(d.Namespace, "!")); err != nil {
			return invalidf("%s.namespace: %v", f, err)
		}
	}
	lists := map[string][]GroupKind{
		"spec.clusterResourceWhitelist": s.ClusterResourceWhitelist, "spec.clusterResourceBlacklist": s.ClusterResourceBlacklist,
		"spec.namespaceResourceWhitelist": s.NamespaceResourceWhitelist, "spec.namespaceResourceBlacklist": s.NamespaceResourceBlacklist,
	}
	for f, l := range lists {
		for i, gk := range l {
			if gk.Kind == "" {
				return invalidf("%s[%d]: kind is missing (\"*\" for any)", f, i)
			}
			for _, g := range []string{gk.Group, gk.Kind} {
				if _, err := CompileGlob(g); err != nil {
					return invalidf("%s[%d]: %v", f, i, err)
				}
			}
		}
	}
	if o := s.OrphanedResources; o != nil {
		for i, k := range o.Ignore {
			for _, f := range [][2]string{{"group", k.Group}, {"kind", k.Kind}, {"name", k.Name}} {
				if _, err := path.Match(f[1], ""); err != nil {
					return invalidf("spec.orphanedResources.ignore[%d].%s: %q is not a glob", i, f[0], f[1])
				}
			}
		}
	}
	for i, w := range s.SyncWindows {
		if err := validateWindow(w); err != nil {
			return invalidf("spec.syncWindows[%d]: %v", i, err)
		}
	}
	return ValidateRollout("spec.rollout", s.Rollout)
}

func validateWindow(w SyncWindow) error {
	if w.Kind != "allow" && w.Kind != "deny" {
		return fmt.Errorf("kind %q: want allow or deny", w.Kind)
	}
	if _, err := CronParser.Parse(w.Schedule); err != nil {
		return fmt.Errorf("schedule %q: %v", w.Schedule, err)
	}
	d, err := time.ParseDuration(w.Duration)
	if err != nil || d <= 0 {
		return fmt.Errorf("duration %q: want a positive duration such as 1h or 30m", w.Duration)
	}
	if w.TimeZone != "" {
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			return fmt.Errorf("timeZone %q: %v", w.TimeZone, err)
		}
	}
	if len(w.Applications) == 0 && len(w.Namespaces) == 0 && len(w.Clusters) == 0 {
		return fmt.Errorf("applications, namespaces and clusters are all empty: the window would apply to no app")
	}
	for _, l := range [][]string{w.Applications, w.Namespaces, w.Clusters} {
		for _, g := range l {
			if _, err := CompileGlob(g); err != nil {
				return err
			}
		}
	}
	return nil
}
