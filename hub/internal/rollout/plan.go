package rollout

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// Defaults of a strategy's optional fields.
const (
	DefaultStepDeadline = 10 * time.Minute
	DefaultGateInterval = 30 * time.Second
	DefaultGateTimeout  = 10 * time.Second
)

// Plan is a compiled rollout strategy.
type Plan struct {
	Steps        []Step
	AutoRollback bool
}

// Step is one compiled step. A step with neither Selector nor Percent
// takes every remaining target.
type Step struct {
	Name     string
	Selector labels.Selector
	Percent  int
	// MaxUnavailable: absolute (Percent false) or a percentage of the
	// step's clusters.
	MaxUnavailable        int
	MaxUnavailablePercent bool
	Soak, Deadline        time.Duration
	Approval              bool
	Gate                  *Gate
	// Implicit: the step Compile added for the clusters no listed step
	// takes.
	Implicit bool
}

// Gate is a compiled app.RolloutGate.
type Gate struct {
	URL               string
	Max, Min          *float64
	Interval, Timeout time.Duration
}

// Compile checks and compiles r (validated by app.ValidateRollout). A last
// step taking every remaining target is added unless the last listed step
// already does.
func Compile(r *app.Rollout) (*Plan, error) {
	if r == nil || len(r.Steps) == 0 {
		return nil, fmt.Errorf("rollout: no steps")
	}
	p := &Plan{AutoRollback: r.AutoRollback}
	deadline, err := duration(r.StepDeadline, DefaultStepDeadline)
	if err != nil {
		return nil, fmt.Errorf("rollout: stepDeadline: %w", err)
	}
	defMax := r.MaxUnavailable
	for i, s := range r.Steps {
		st := Step{Name: s.Name, Percent: s.Percent, Approval: s.Approval}
		if st.Name == "" {
			st.Name = fmt.Sprintf("step %d", i+1)
		}
		if s.ClusterSelector != nil {
			if st.Selector, err = metav1.LabelSelectorAsSelector(s.ClusterSelector); err != nil {
				return nil, fmt.Errorf("rollout: steps[%d].clusterSelector: %w", i, err)
			}
		}
		mu := s.MaxUnavailable
		if mu == nil {
			mu = defMax
		}
		if st.MaxUnavailable, st.MaxUnavailablePercent, err = intOrPercent(mu); err != nil {
			return nil, fmt.Errorf("rollout: steps[%d].maxUnavailable: %w", i, err)
		}
		if st.Soak, err = duration(s.Soak, 0); err != nil {
			return nil, fmt.Errorf("rollout: steps[%d].soak: %w", i, err)
		}
		if st.Deadline, err = duration(s.Deadline, deadline); err != nil {
			return nil, fmt.Errorf("rollout: steps[%d].deadline: %w", i, err)
		}
		if g := s.Gate; g != nil {
			cg := &Gate{URL: g.URL, Max: g.Max, Min: g.Min}
			if cg.Interval, err = duration(g.Interval, DefaultGateInterval); err != nil {
				return nil, fmt.Errorf("rollout: steps[%d].gate.interval: %w", i, err)
			}
			if cg.Timeout, err = duration(g.Timeout, DefaultGateTimeout); err != nil {
				return nil, fmt.Errorf("rollout: steps[%d].gate.timeout: %w", i, err)
			}
			st.Gate = cg
		}
		p.Steps = append(p.Steps, st)
	}
	if last := p.Steps[len(p.Steps)-1]; last.Selector != nil || (last.Percent != 0 && last.Percent != 100) {
		st := Step{Name: "rest", Deadline: deadline, Implicit: true}
		st.MaxUnavailable, st.MaxUnavailablePercent, _ = intOrPercent(defMax)
		p.Steps = append(p.Steps, st)
	}
	return p, nil
}

func duration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	return time.ParseDuration(s)
}

// intOrPercent reads a maxUnavailable; nil is 100%.
func intOrPercent(v *intstr.IntOrString) (int, bool, error) {
	if v == nil {
		return 100, true, nil
	}
	if v.Type == intstr.Int {
		return max(int(v.IntVal), 1), false, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if err != nil || !strings.HasSuffix(v.StrVal, "%") {
		return 0, false, fmt.Errorf("%q is not a number or a percentage", v.StrVal)
	}
	return n, true, nil
}

// maxUnavailable is how many of n step clusters may update at once (at
// least one).
func (s Step) maxUnavailable(n int) int {
	if !s.MaxUnavailablePercent {
		return max(s.MaxUnavailable, 1)
	}
	return max(int(math.Ceil(float64(n)*float64(s.MaxUnavailable)/100)), 1)
}

// takes returns the targets (in order) the step takes out of remaining.
func (s Step) takes(remaining []Target) []string {
	var out []string
	switch {
	case s.Selector != nil:
		for _, t := range remaining {
			if s.Selector.Matches(labels.Set(t.Labels)) {
				out = append(out, t.Name)
			}
		}
	case s.Percent != 0:
		n := int(math.Ceil(float64(len(remaining)) * float64(s.Percent) / 100))
		for _, t := range remaining[:n] {
			out = append(out, t.Name)
		}
	default:
		for _, t := range remaining {
			out = append(out, t.Name)
		}
	}
	return out
}
