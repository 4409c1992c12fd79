package controller

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/renderspec"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// An app whose destination is the hub (Argo CD's in-cluster server: the
// root of an app-of-apps) is rendered on the hub, once, for the
// Applications and ApplicationSets it defines; nothing goes to a cluster.

// hubTarget is the pseudo-cluster a hub app renders for; no cluster can
// carry this name.
const hubTarget = "(hub)"

// hubKubeVersion is the Kubernetes version the hub's client libraries
// (k8s.io/client-go v0.37) are made for. A hub app's Helm chart renders
// with it, since no cluster reports capabilities for the hub.
const hubKubeVersion = "v1.37.0"

// hubCapabilities are what a hub app's chart sees: hubKubeVersion and the
// kinds a root defines.
var hubCapabilities = func() *renderspec.Capabilities {
	c, err := renderspec.NewCapabilities(hubKubeVersion, []string{
		"v1", app.ArgoAPIVersion, app.ArgoAPIVersion + "/" + app.KindApp, app.ArgoAPIVersion + "/" + app.KindAppSet,
		app.ArgoAPIVersion + "/" + app.KindAppProject, app.APIVersion, app.APIVersion + "/" + app.KindApp, app.APIVersion + "/" + app.KindProject,
	})
	if err != nil {
		panic(err) // a constant
	}
	return c
}()

// hubApp renders a, whose destination is the hub, and fills as: its
// revision, its error (a render error, or objects that are not
// definitions: a hub app sends nothing to a cluster), and its warnings.
// It returns the children the render defines; ok is false while the
// render is not done or failed (the children of the last render stay).
func (c *Controller) hubApp(a *app.Application, policy *apiv1alpha1.SyncPolicy, u *usage, as *AppState) (children []*unstructured.Unstructured, done, ok bool) {
	as.Hub = true
	out, ts, done, err := c.bundleFor(a, target.Cluster{Name: hubTarget}, policy, "", u)
	switch {
	case !done:
		return nil, false, false
	case err != nil:
		as.Error = fmt.Sprintf("%s: Application %s: %v", a.File, a.Name, err)
		var w waitingError
		return nil, !errors.As(err, &w), false // waiting for the repo: pending
	}
	as.Revision, as.Revisions = ts.Revision, ts.Revisions
	var others []string
	for _, o := range out.objs {
		others = append(others, o.GetKind()+" "+o.GetName())
	}
	if len(others) > 0 {
		first := others[0]
		if len(others) > 1 {
			first += fmt.Sprintf(" and %d more", len(others)-1)
		}
		as.Error = fmt.Sprintf("%s: Application %s: its destination is the hub (Argo CD's in-cluster server), which only takes Applications and ApplicationSets, but it renders %s; name a cluster in spec.destination to deploy them", a.File, a.Name, strings.TrimSpace(first))
	}
	return out.children, true, true
}
