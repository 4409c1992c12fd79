package controller

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/project"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// projects are the compiled projects of one reconcile.
type projects struct {
	off    bool
	byName map[string]*project.Policy
	// broken are the projects whose definition could not be used.
	broken map[string]string
}

// compileProjects compiles the projects of defs. With enforcement off,
// every app is in an allow-all project.
func compileProjects(defs app.Definitions, off bool) (*projects, []string) {
	ps := &projects{off: off, byName: map[string]*project.Policy{}, broken: map[string]string{}}
	var warnings []string
	for _, b := range defs.Broken {
		if (b.Kind == app.KindProject || b.Kind == app.KindAppProject) && b.Name != "" {
			ps.broken[b.Name] = b.Error
		}
	}
	for _, p := range defs.Projects {
		pol, err := project.Compile(p)
		if err != nil {
			ps.broken[p.Name] = fmt.Sprintf("%s: %v", p.File, err)
			continue
		}
		ps.byName[p.Name] = pol
	}
	return ps, warnings
}

// policyOf returns the project policy of a, or an error on the app when
// its project is not defined or could not be used. The default project,
// when no definition declares it, allows everything, as Argo CD's does.
func (ps *projects) policyOf(a *app.Application) (*project.Policy, error) {
	name := a.Spec.ProjectName()
	if ps.off {
		return project.AllowAll(name), nil
	}
	if p, ok := ps.byName[name]; ok {
		return p, nil
	}
	if why, ok := ps.broken[name]; ok {
		return nil, fmt.Errorf("spec.project: %w: project %s could not be used: %s", project.ErrNoProject, name, why)
	}
	if name == app.DefaultProject {
		return project.AllowAll(name), nil
	}
	return nil, fmt.Errorf("spec.project: %w: project %s is not defined (define it with a flotilla.dev/v1alpha1 Project or an Argo CD AppProject)", project.ErrNoProject, name)
}

// nextWindow keeps the earliest time a sync window changes.
func nextWindow(cur, t time.Time) time.Time {
	if t.IsZero() || (!cur.IsZero() && cur.Before(t)) {
		return cur
	}
	return t
}

// scheduleWindows makes the controller reconcile when a sync window next
// opens or closes.
func (c *Controller) scheduleWindows(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.windowTimer != nil {
		c.windowTimer.Stop()
		c.windowTimer = nil
	}
	if at.IsZero() {
		return
	}
	c.windowTimer = time.AfterFunc(max(at.Sub(c.opts.Now()), 0), c.Trigger)
}

// heldBy returns policy with automated sync and self-heal off while a sync
// window holds them: the agent gets the new bundle but applies it only on
// a manual sync. The window opening again changes the bundle back.
func heldBy(policy *apiv1alpha1.SyncPolicy, w project.Windows) *apiv1alpha1.SyncPolicy {
	if w.Automated || policy == nil || !policy.GetAutomated() {
		return policy
	}
	policy = proto.Clone(policy).(*apiv1alpha1.SyncPolicy)
	policy.Automated, policy.SelfHeal = false, false
	return policy
}

// checkRendered refuses a render whose objects the project does not allow
// on cl, or that defines apps or projects on the hub (app-of-apps) when
// the project does not allow the hub as a destination.
func (c *Controller) checkRendered(pol *project.Policy, a *app.Application, cl target.Cluster, out bundleResult) error {
	if err := pol.CheckObjects(app.Cluster(cl), a.Spec.Destination.Namespace, out.objs); err != nil {
		return err
	}
	if len(out.children) > 0 {
		if err := pol.CheckHub(); err != nil {
			return fmt.Errorf("it renders %s %s, which defines it on the hub: %w", out.children[0].GetKind(), out.children[0].GetName(), err)
		}
	}
	return nil
}
