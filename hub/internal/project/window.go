package project

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

type window struct {
	index      int
	deny       bool
	sched      cron.Schedule
	spec       string
	dur        time.Duration
	loc        *time.Location
	apps, nss  []*regexp.Regexp
	clusters   []*regexp.Regexp
	manualSync bool
	and        bool
}

func compileWindow(i int, w app.SyncWindow) (window, error) {
	out := window{index: i, deny: w.Kind == "deny", spec: w.Kind + " " + w.Schedule + " for " + w.Duration, manualSync: w.ManualSync, and: w.AndOperator, loc: time.UTC}
	var err error
	if out.sched, err = app.CronParser.Parse(w.Schedule); err != nil {
		return out, fmt.Errorf("schedule %q: %w", w.Schedule, err)
	}
	if out.dur, err = time.ParseDuration(w.Duration); err != nil {
		return out, fmt.Errorf("duration %q: %w", w.Duration, err)
	}
	if w.TimeZone != "" {
		if out.loc, err = time.LoadLocation(w.TimeZone); err != nil {
			return out, fmt.Errorf("timeZone %q: %w", w.TimeZone, err)
		}
		out.spec += " (" + w.TimeZone + ")"
	}
	for _, l := range []struct {
		in  []string
		out *[]*regexp.Regexp
	}{{w.Applications, &out.apps}, {w.Namespaces, &out.nss}, {w.Clusters, &out.clusters}} {
		for _, g := range l.in {
			re, err := app.CompileGlob(g)
			if err != nil {
				return out, err
			}
			if re != nil {
				*l.out = append(*l.out, re)
			}
		}
	}
	return out, nil
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// applies reports whether the window selects the app (by name), its
// destination namespace or its cluster: any one of them, or every
// non-empty one with andOperator.
func (w window) applies(appName, namespace, cluster string) bool {
	sel := [][]*regexp.Regexp{w.apps, w.nss, w.clusters}
	val := []string{appName, namespace, cluster}
	matched, used := 0, 0
	for i, res := range sel {
		if len(res) == 0 {
			continue
		}
		used++
		if anyMatch(res, val[i]) {
			matched++
		}
	}
	if w.and {
		return used > 0 && matched == used
	}
	return matched > 0
}

// open reports whether the window is open at now, and when that next
// changes: an open window closes at the end of the activation that opened
// it; a closed one opens at its next activation.
func (w window) open(now time.Time) (bool, time.Time) {
	now = now.In(w.loc)
	start := w.sched.Next(now.Add(-w.dur)) // the first activation still running, if any
	if !start.After(now) {
		return true, start.Add(w.dur)
	}
	return false, start
}

// Windows is what sync windows say about one (app, cluster) now.
type Windows struct {
	// Automated: automated syncs (and self-heal) may run.
	Automated bool
	// Manual: a person may sync by hand.
	Manual bool
	// Reason names the window that holds syncs ("" when Automated).
	Reason string
	// Next is when this may change (zero: never).
	Next time.Time
}

// SyncWindows evaluates the project's sync windows for an app on a
// cluster at now, as Argo CD does: an open deny window holds syncs; else,
// when allow windows select the app, one of them must be open. A person
// may still sync by hand when every window holding syncs has manualSync.
func (p *Policy) SyncWindows(appName, namespace, cluster string, now time.Time) Windows {
	out := Windows{Automated: true, Manual: true}
	var openDeny, openAllow, closedAllow []window
	ends := map[int]time.Time{}
	for _, w := range p.windows {
		if !w.applies(appName, namespace, cluster) {
			continue
		}
		open, next := w.open(now)
		ends[w.index] = next
		if out.Next.IsZero() || next.Before(out.Next) {
			out.Next = next
		}
		switch {
		case w.deny && open:
			openDeny = append(openDeny, w)
		case !w.deny && open:
			openAllow = append(openAllow, w)
		case !w.deny:
			closedAllow = append(closedAllow, w)
		}
	}
	manual := func(ws []window) bool {
		for _, w := range ws {
			if !w.manualSync {
				return false
			}
		}
		return true
	}
	switch {
	case len(openDeny) > 0:
		out.Automated, out.Manual = false, manual(openDeny)
		out.Reason = fmt.Sprintf("project %s: sync window spec.syncWindows[%d] (%s) denies syncs until %s", p.Name, openDeny[0].index, openDeny[0].spec, ends[openDeny[0].index].UTC().Format(time.RFC3339))
	case len(openAllow) == 0 && len(closedAllow) > 0:
		out.Automated, out.Manual = false, manual(closedAllow)
		out.Reason = fmt.Sprintf("project %s: outside every allow sync window (%s) until %s", p.Name, specs(closedAllow), out.Next.UTC().Format(time.RFC3339))
	}
	if out.Automated {
		return out
	}
	if !out.Manual {
		out.Reason += "; manual syncs are held too (manualSync is not set)"
	} else {
		out.Reason += "; manual syncs are allowed (manualSync)"
	}
	return out
}

func specs(ws []window) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = fmt.Sprintf("spec.syncWindows[%d] %s", w.index, w.spec)
	}
	return strings.Join(s, ", ")
}
