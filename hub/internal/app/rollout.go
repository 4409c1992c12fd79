package app

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// RolloutAnnotation carries a Rollout (YAML or JSON) on an Argo CD
// Application, whose spec has no place for one.
const RolloutAnnotation = "flotilla.dev/rollout"

// Rollout is a progressive rollout strategy: a new revision of the app
// reaches its clusters step by step. Clusters a step has not reached yet
// keep the previous revision. On an Application (spec.rollout) or as the
// default of a Project's apps (spec.rollout); the Application's wins.
type Rollout struct {
	// Steps are taken in order. Clusters no step selects are taken by an
	// implicit last step once every listed step is done.
	Steps []RolloutStep `json:"steps"`
	// MaxUnavailable is the default number (or percentage of the step,
	// "25%") of a step's clusters updating at once: reached and not yet
	// Synced and Healthy. Default "100%": a step's clusters all at once.
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	// StepDeadline is the default time a step's clusters have to become
	// Synced and Healthy after the step started; default 10m.
	StepDeadline string `json:"stepDeadline,omitempty"`
	// AutoRollback returns the reached clusters to the previous revision
	// when the rollout halts (a cluster Degraded, a missed deadline, a
	// failed gate).
	AutoRollback bool `json:"autoRollback,omitempty"`
}

// RolloutStep is one step: the clusters it takes (ClusterSelector, or
// Percent of the targets no earlier step took; neither: all of them),
// how many update at once, how long they soak once Synced and Healthy,
// and whether a person approves before it starts.
type RolloutStep struct {
	Name            string                `json:"name,omitempty"`
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	// Percent of the remaining targets, rounded up (1–100).
	Percent        int                 `json:"percent,omitempty"`
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	// Soak is how long the step's clusters stay Synced and Healthy (and
	// the gate passes) before the next step starts, e.g. "5m".
	Soak string `json:"soak,omitempty"`
	// Approval: the step starts only after `flotilla rollout approve`.
	Approval bool `json:"approval,omitempty"`
	// Deadline overrides the rollout's StepDeadline.
	Deadline string `json:"deadline,omitempty"`
	// Gate is checked during the soak; a failing gate halts the rollout.
	Gate *RolloutGate `json:"gate,omitempty"`
}

// RolloutGate is a Prometheus query checked during a step's soak: an HTTP
// GET of URL (Prometheus' /api/v1/query with its query parameter) whose
// first sample must not exceed Max (and not be below Min).
type RolloutGate struct {
	URL string   `json:"url"`
	Max *float64 `json:"max,omitempty"`
	Min *float64 `json:"min,omitempty"`
	// Interval between checks during the soak; default 30s.
	Interval string `json:"interval,omitempty"`
	// Timeout of one check; default 10s.
	Timeout string `json:"timeout,omitempty"`
}

// ParseRolloutAnnotation reads the RolloutAnnotation of an Argo CD
// Application; nil without one.
func ParseRolloutAnnotation(ann map[string]string) (*Rollout, error) {
	v, ok := ann[RolloutAnnotation]
	if !ok || strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var r Rollout
	if err := yaml.UnmarshalStrict([]byte(v), &r); err != nil {
		return nil, invalidf("metadata.annotations[%s]: %v", RolloutAnnotation, err)
	}
	return &r, nil
}

// ValidateRollout checks r; field prefixes errors with the field's path.
func ValidateRollout(field string, r *Rollout) error {
	if r == nil {
		return nil
	}
	if len(r.Steps) == 0 {
		return invalidf("%s.steps: a rollout needs at least one step", field)
	}
	if err := validIntOrPercent(field+".maxUnavailable", r.MaxUnavailable); err != nil {
		return err
	}
	if err := validDuration(field+".stepDeadline", r.StepDeadline); err != nil {
		return err
	}
	for i, s := range r.Steps {
		f := fmt.Sprintf("%s.steps[%d]", field, i)
		if s.ClusterSelector != nil && s.Percent != 0 {
			return invalidf("%s: clusterSelector and percent: a step takes clusters by one of them", f)
		}
		if s.ClusterSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(s.ClusterSelector); err != nil {
				return invalidf("%s.clusterSelector: %v", f, err)
			}
		}
		if s.Percent < 0 || s.Percent > 100 {
			return invalidf("%s.percent: %d is not between 1 and 100", f, s.Percent)
		}
		if err := validIntOrPercent(f+".maxUnavailable", s.MaxUnavailable); err != nil {
			return err
		}
		if err := validDuration(f+".soak", s.Soak); err != nil {
			return err
		}
		if err := validDuration(f+".deadline", s.Deadline); err != nil {
			return err
		}
		if g := s.Gate; g != nil {
			u, err := url.Parse(g.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return invalidf("%s.gate.url: %q is not an http(s) URL", f, g.URL)
			}
			if g.Max == nil && g.Min == nil {
				return invalidf("%s.gate: neither max nor min: the gate would pass any value", f)
			}
			if err := validDuration(f+".gate.interval", g.Interval); err != nil {
				return err
			}
			if err := validDuration(f+".gate.timeout", g.Timeout); err != nil {
				return err
			}
		}
	}
	return nil
}

func validDuration(field, s string) error {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return invalidf("%s: %q is not a duration such as 30s or 5m", field, s)
	}
	return nil
}

func validIntOrPercent(field string, v *intstr.IntOrString) error {
	if v == nil {
		return nil
	}
	if v.Type == intstr.Int {
		if v.IntVal < 1 {
			return invalidf("%s: %d: want at least 1", field, v.IntVal)
		}
		return nil
	}
	p, ok := strings.CutSuffix(v.StrVal, "%")
	n, err := strconv.Atoi(p)
	if !ok || err != nil || n < 1 || n > 100 {
		return invalidf("%s: %q: want a number or a percentage such as 25%%", field, v.StrVal)
	}
	return nil
}
