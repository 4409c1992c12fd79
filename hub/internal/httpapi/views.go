package httpapi

import (
	"slices"
	"sort"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/health"
)

// SyncName is the API's spelling of a sync status.
func SyncName(v apiv1alpha1.SyncStatus) string { return v.Name() }

// HealthName is the API's spelling of a health status.
func HealthName(v apiv1alpha1.HealthStatus) string { return v.Name() }

// PhaseName is the API's spelling of an operation phase.
func PhaseName(v apiv1alpha1.Operation_Phase) string { return v.Name() }

// Views joins the controller's snapshot with the statuses agents reported.
// An (app, cluster) is Synced only when the agent reports Synced for the
// digest the hub wants.
func Views(snap *controller.Snapshot, fl *fleet.Fleet, withObjects bool) []api.AppView {
	status := fl.Status()
	out := make([]api.AppView, 0, len(snap.Apps))
	for _, as := range snap.Apps {
		redact := redactSources(as.Spec) // credentials in repo URLs are never shown
		v := api.AppView{Name: as.Name, Project: as.Spec.ProjectName(), File: as.File, Revision: as.Revision, Revisions: as.Revisions, Error: redact(as.Error), Warnings: as.Warnings, Parent: as.Parent, Hub: as.Hub, Clusters: []api.AppClusterView{}, Sync: "Synced", Health: "Healthy"}
		if withObjects {
			spec := as.Spec
			spec.Source.RepoURL = gitsource.Redact(spec.Source.RepoURL)
			spec.Sources = slices.Clone(spec.Sources)
			for i := range spec.Sources {
				spec.Sources[i].RepoURL = gitsource.Redact(spec.Sources[i].RepoURL)
			}
			v.Spec = spec
		}
		for _, t := range as.Targets {
			cv := api.AppClusterView{Cluster: t.Cluster, Digest: t.Digest, Revision: t.Revision, Revisions: t.Revisions, Error: redact(t.Error), Pinned: t.Pinned, Sync: "Unknown", Health: "Unknown"}
			cv.Connected, _ = fl.Connected(t.Cluster)
			if st := status[t.Cluster][as.Name]; st != nil {
				cv.ObservedDigest, cv.ObservedRev, cv.Message = st.GetDigest(), st.GetRevision(), st.GetMessage()
				cv.Health = HealthName(st.GetHealth())
				cv.LastOperation = operationView(st.GetLastOperation())
				if st.GetDigest() == t.Digest && t.Digest != "" {
					cv.Sync = SyncName(st.GetSync())
				} else {
					cv.Sync = "OutOfSync" // the agent has not applied what the hub wants yet
				}
				if withObjects {
					cv.Objects = objectViews(st.GetObjects())
				}
			}
			if t.Error != "" && cv.Sync == "Synced" {
				cv.Sync = "OutOfSync" // git moved but the new state cannot be rendered
			}
			if cv.Sync != "Synced" {
				v.Sync = worstSync(v.Sync, cv.Sync)
			}
			if health.RankName(cv.Health) > health.RankName(v.Health) {
				v.Health = cv.Health
			}
			v.Clusters = append(v.Clusters, cv)
		}
		if len(as.Targets) == 0 && (!as.Hub || as.Revision == "") {
			// A hub app (an app-of-apps root) is Synced once rendered:
			// its children are defined by then.
			v.Sync, v.Health = "Unknown", "Unknown"
		}
		if as.Error != "" && v.Sync == "Synced" {
			v.Sync = "Unknown"
		}
		sort.Slice(v.Clusters, func(i, j int) bool { return v.Clusters[i].Cluster < v.Clusters[j].Cluster })
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func objectViews(objs []*apiv1alpha1.ObjectStatus) []api.ObjectView {
	out := make([]api.ObjectView, 0, len(objs))
	for _, o := range objs {
		out = append(out, api.ObjectView{
			Group: o.GetGroup(), Version: o.GetVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(),
			Sync: SyncName(o.GetSync()), Health: HealthName(o.GetHealth()), Message: o.GetMessage(), Diff: o.GetDiff(),
		})
	}
	return out
}

func operationView(op *apiv1alpha1.Operation) *api.OperationView {
	if op == nil {
		return nil
	}
	v := &api.OperationView{Phase: PhaseName(op.GetPhase()), Revision: op.GetRevision(), Digest: op.GetDigest(), Message: op.GetMessage(), InitiatedBy: op.GetInitiatedBy(), Hooks: hookViews(store.HookRecords(op))}
	if op.GetStartedAt() != nil {
		v.StartedAt = op.GetStartedAt().AsTime()
	}
	if op.GetFinishedAt() != nil {
		v.FinishedAt = op.GetFinishedAt().AsTime()
	}
	return v
}

func worstSync(a, b string) string {
	if a == "OutOfSync" || b == "OutOfSync" {
		return "OutOfSync"
	}
	return "Unknown"
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
