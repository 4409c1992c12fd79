package status

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Views joins the controller's snapshot with the statuses agents reported
// (ClusterSync per cluster, AppSync per app), sorted by app and cluster.
// withObjects adds each app's spec and each cluster's objects.
// Credentials in repository URLs are never shown.
func Views(snap *controller.Snapshot, fl *fleet.Fleet, withObjects bool) []api.AppView {
	reported := fl.Status()
	out := make([]api.AppView, 0, len(snap.Apps))
	for _, as := range snap.Apps {
		out = append(out, appView(as, func(cluster string) *apiv1alpha1.AppStatus { return reported[cluster][as.Name] }, fl, withObjects))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ViewsPage is the page of Views that follows the app named after ("":
// from the first), at most limit views long, and the name to pass as after
// for the next page ("" when no app is left). It builds only the page's
// views, so reading every page of n apps costs n views, not n per page.
func ViewsPage(snap *controller.Snapshot, fl *fleet.Fleet, after string, limit int, withObjects bool) ([]api.AppView, string) {
	idx := make([]int, 0, len(snap.Apps))
	for i := range snap.Apps {
		if snap.Apps[i].Name > after {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(snap.Apps[a].Name, snap.Apps[b].Name) })
	next := ""
	if limit > 0 && len(idx) > limit {
		idx = idx[:limit]
		next = snap.Apps[idx[limit-1]].Name
	}
	out := make([]api.AppView, 0, len(idx))
	for _, i := range idx {
		name := snap.Apps[i].Name
		out = append(out, appView(snap.Apps[i], func(cluster string) *apiv1alpha1.AppStatus { return fl.StatusOf(cluster, name) }, fl, withObjects))
	}
	return out, next
}

// View is the view of the app called name, as Views shows it, without
// building the others'; ok is false when no app has that name.
func View(snap *controller.Snapshot, fl *fleet.Fleet, name string, withObjects bool) (api.AppView, bool) {
	for _, as := range snap.Apps {
		if as.Name == name {
			return appView(as, func(cluster string) *apiv1alpha1.AppStatus { return fl.StatusOf(cluster, name) }, fl, withObjects), true
		}
	}
	return api.AppView{}, false
}

// appView is one app's view; reported returns what the app's agent on a
// cluster reported (nil: nothing).
func appView(as controller.AppState, reported func(cluster string) *apiv1alpha1.AppStatus, fl *fleet.Fleet, withObjects bool) api.AppView {
	redact := redactSources(as.Spec)
	v := api.AppView{Name: as.Name, Project: as.Spec.ProjectName(), File: as.File, Revision: as.Revision, Revisions: as.Revisions, Error: redact(as.Error), Warnings: as.Warnings, Parent: as.Parent, Hub: as.Hub, Clusters: make([]api.AppClusterView, 0, len(as.Targets))}
	if withObjects {
		spec := as.Spec
		spec.Source.RepoURL = gitsource.Redact(spec.Source.RepoURL)
		spec.Sources = slices.Clone(spec.Sources)
		for i := range spec.Sources {
			spec.Sources[i].RepoURL = gitsource.Redact(spec.Sources[i].RepoURL)
		}
		v.Spec = spec
	}
	states := make([]ClusterState, 0, len(as.Targets))
	for _, t := range as.Targets {
		st := reported(t.Cluster)
		cv := api.AppClusterView{Cluster: t.Cluster, Digest: t.Digest, Revision: t.Revision, Revisions: t.Revisions, Error: redact(t.Error), Pinned: t.Pinned, SyncWindow: t.SyncWindow, Rollout: t.Rollout}
		cv.Sync, cv.Health = ClusterSync(t, st)
		cv.Connected, _ = fl.Connected(t.Cluster)
		if st != nil {
			cv.ObservedDigest, cv.ObservedRev, cv.Message = st.GetDigest(), st.GetRevision(), st.GetMessage()
			cv.LastOperation = operationView(st.GetLastOperation())
			cv.Orphaned, cv.Conditions = orphanedView(st.GetOrphaned(), withObjects)
			if withObjects {
				cv.Objects = objectViews(st.GetObjects())
			}
		}
		states = append(states, ClusterState{Sync: cv.Sync, Health: cv.Health})
		v.Clusters = append(v.Clusters, cv)
	}
	v.Sync, v.Health = AppSync(as, states)
	sort.Slice(v.Clusters, func(i, j int) bool { return v.Clusters[i].Cluster < v.Clusters[j].Cluster })
	return v
}

func objectViews(objs []*apiv1alpha1.ObjectStatus) []api.ObjectView {
	out := make([]api.ObjectView, 0, len(objs))
	for _, o := range objs {
		out = append(out, api.ObjectView{
			Group: o.GetGroup(), Version: o.GetVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(),
			Sync: o.GetSync().Name(), Health: o.GetHealth().Name(), Message: o.GetMessage(), Diff: o.GetDiff(),
		})
	}
	return out
}

// orphanedView is what the agent found orphaned and, when the project
// asks for warnings and there is something, the warning condition.
func orphanedView(r *apiv1alpha1.OrphanedReport, withObjects bool) (*api.OrphanedView, []api.Condition) {
	if r == nil {
		return nil, nil
	}
	v := &api.OrphanedView{Count: int(r.GetCount()), Error: r.GetError()}
	if withObjects {
		for _, o := range r.GetObjects() {
			v.Objects = append(v.Objects, api.OrphanedRef{Group: o.GetGroup(), Version: o.GetVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()})
		}
	}
	var conds []api.Condition
	if r.GetWarn() && r.GetCount() > 0 {
		conds = append(conds, api.Condition{Type: api.ConditionOrphanedResourceWarning, Message: fmt.Sprintf("Application has %d orphaned resources", r.GetCount())})
	}
	return v, conds
}

func operationView(op *apiv1alpha1.Operation) *api.OperationView {
	if op == nil {
		return nil
	}
	v := &api.OperationView{Phase: op.GetPhase().Name(), Revision: op.GetRevision(), Digest: op.GetDigest(), Message: op.GetMessage(), InitiatedBy: op.GetInitiatedBy(), Hooks: hookViews(store.HookRecords(op))}
	if op.GetStartedAt() != nil {
		v.StartedAt = op.GetStartedAt().AsTime()
	}
	if op.GetFinishedAt() != nil {
		v.FinishedAt = op.GetFinishedAt().AsTime()
	}
	return v
}

func hookViews(hs []store.HookRecord) []api.Hook {
	if hs == nil {
		return nil
	}
	out := make([]api.Hook, len(hs))
	for i, h := range hs {
		out[i] = api.Hook{
			Phase: h.Phase, Group: h.Group, Kind: h.Kind, Namespace: h.Namespace, Name: h.Name, Hook: h.Hook, Wave: h.Wave,
			Status: h.Status, Message: h.Message, StartedAt: h.StartedAt, FinishedAt: h.FinishedAt, Deleted: h.Deleted,
		}
	}
	return out
}

// HistoryView is a history entry as the API shows it (the store's own
// types never go over the wire).
func HistoryView(e store.HistoryEntry) api.HistoryEntry {
	return api.HistoryEntry{
		ID: e.ID, App: e.App, Cluster: e.Cluster, Revision: e.Revision, Digest: e.Digest, StartedAt: e.StartedAt, FinishedAt: e.FinishedAt,
		InitiatedBy: e.InitiatedBy, Result: e.Result, Message: e.Message, Hooks: hookViews(e.Hooks),
	}
}

// redactSources returns a function removing the credentials of every
// repository URL of spec from a text.
func redactSources(spec app.Spec) func(string) string {
	srcs := spec.AllSources()
	return func(text string) string {
		for _, s := range srcs {
			text = gitsource.RedactText(text, s.RepoURL)
		}
		return text
	}
}
