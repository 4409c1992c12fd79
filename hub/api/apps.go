package api

import "time"

// AppView is an application with its state on every targeted cluster
// (GET /api/v1/apps, GET /api/v1/apps/{name}).
type AppView struct {
	Name string `json:"name"`
	// Project is the app's project (spec.project; "default" when it
	// names none); per-project roles authorize by it.
	Project  string `json:"project"`
	File     string `json:"file,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Revisions are each source's commit, for an app with several.
	Revisions []string `json:"revisions,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	// Parent is the app whose render defined this one (app-of-apps).
	Parent string `json:"parent,omitempty"`
	// Hub: the app is rendered on the hub for the apps it defines (an
	// app-of-apps root); it has no clusters.
	Hub bool `json:"hub,omitempty"`
	// Spec is the application's spec, credentials removed from its
	// repository URLs; only GET /api/v1/apps/{name} fills it.
	Spec     any              `json:"spec,omitempty"`
	Clusters []AppClusterView `json:"clusters"`
	Sync     string           `json:"sync"`
	Health   string           `json:"health"`
}

// AppClusterView is one (app, cluster).
type AppClusterView struct {
	Cluster string `json:"cluster"`
	// Desired is what the hub computed.
	Digest   string `json:"digest,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Revisions are each source's commit, for an app with several.
	Revisions []string `json:"revisions,omitempty"`
	Error     string   `json:"error,omitempty"`
	// Pinned is the revision a rollback pinned this target to; auto-sync
	// is suspended while it is set.
	Pinned string `json:"pinned,omitempty"`
	// SyncWindow says which sync window of the app's project holds
	// automated syncs (and self-heal) here now, and whether manual syncs
	// are allowed; empty when no window holds them.
	SyncWindow string `json:"syncWindow,omitempty"`
	// Rollout says why the app's rollout keeps this cluster at the
	// previous revision ("waiting for step 2 (wave1)"); empty when it has
	// the app's revision.
	Rollout string `json:"rollout,omitempty"`
	// Observed is what the agent reported.
	Connected      bool           `json:"connected"`
	Sync           string         `json:"sync"`
	Health         string         `json:"health"`
	Message        string         `json:"message,omitempty"`
	ObservedDigest string         `json:"observedDigest,omitempty"`
	ObservedRev    string         `json:"observedRevision,omitempty"`
	Objects        []ObjectView   `json:"objects,omitempty"`
	LastOperation  *OperationView `json:"lastOperation,omitempty"`
	// Orphaned is what the agent last found orphaned in the app's
	// destination namespace, when the app's project has
	// orphanedResources; nil otherwise.
	Orphaned *OrphanedView `json:"orphaned,omitempty"`
	// Conditions are Argo CD style warnings on this (app, cluster):
	// OrphanedResourceWarning when the project's orphanedResources.warn is
	// set and there are orphaned objects.
	Conditions []Condition `json:"conditions,omitempty"`
}

// ConditionOrphanedResourceWarning is the condition type of an app with
// orphaned objects (Argo CD's name).
const ConditionOrphanedResourceWarning = "OrphanedResourceWarning"

// Condition is a warning about an (app, cluster).
type Condition struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// OrphanedView is the objects in an app's destination namespace that no
// app manages and nothing owns.
type OrphanedView struct {
	// Count is how many there are; Objects lists at most the first 100
	// (only GET /api/v1/apps/{name} fills it).
	Count   int           `json:"count"`
	Objects []OrphanedRef `json:"objects,omitempty"`
	// Error is why the agent's last look failed in part.
	Error string `json:"error,omitempty"`
}

// OrphanedRef names one orphaned object.
type OrphanedRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// ObjectView is one managed object as its agent reported it.
type ObjectView struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Sync      string `json:"sync"`
	Health    string `json:"health"`
	Message   string `json:"message,omitempty"`
	// Diff is a unified diff of desired against live when the object drifted.
	Diff string `json:"diff,omitempty"`
}

// OperationView is the last sync an agent ran.
type OperationView struct {
	Phase       string    `json:"phase"`
	Revision    string    `json:"revision,omitempty"`
	Digest      string    `json:"digest,omitempty"`
	Message     string    `json:"message,omitempty"`
	InitiatedBy string    `json:"initiatedBy,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	// Hooks are the resource hooks the operation ran (PreSync, Sync,
	// PostSync, SyncFail), in the order they started.
	Hooks []Hook `json:"hooks,omitempty"`
}

// Hook is one resource hook a sync ran.
type Hook struct {
	// Phase is PreSync, Sync, PostSync or SyncFail.
	Phase     string `json:"phase"`
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	// Name is the created object's name (generated for a hook with
	// metadata.generateName).
	Name string `json:"name,omitempty"`
	// Hook is the hook's identity in git: its name or generateName.
	Hook string `json:"hook"`
	Wave int32  `json:"wave,omitempty"`
	// Status is Running, Succeeded, Failed or Unknown.
	Status     string    `json:"status"`
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Deleted is set when the hook's delete policy removed it.
	Deleted bool `json:"deleted,omitempty"`
}

// SyncRequest asks agents to apply an app now (POST
// /api/v1/apps/{name}/sync) or to re-read live state (…/refresh).
type SyncRequest struct {
	// Cluster limits the command to one cluster; empty sends it to all
	// targets.
	Cluster string `json:"cluster,omitempty"`
	Prune   bool   `json:"prune,omitempty"`
}

// SyncResponse lists where the command was sent.
type SyncResponse struct {
	Sent   []string          `json:"sent"`
	Failed map[string]string `json:"failed,omitempty"`
}

// DiffResponse is the diff of desired against live on each cluster (GET
// /api/v1/apps/{name}/diff).
type DiffResponse struct {
	App      string        `json:"app"`
	Clusters []ClusterDiff `json:"clusters"`
}

// ClusterDiff is one cluster's answer to a diff.
type ClusterDiff struct {
	Cluster string `json:"cluster"`
	// OK is false when the agent could not compute the diff (Error says why).
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Summary is the agent's one-line summary ("2 objects differ").
	Summary string `json:"summary,omitempty"`
	// Diff is a unified diff; empty when live matches desired.
	Diff string `json:"diff,omitempty"`
}

// DefinitionsView is the state of the Application definitions as the last
// reconcile saw them (GET /api/v1/definitions): when, the error that kept
// the previous state in force (if any), and warnings about fields Flotilla
// cannot honour.
type DefinitionsView struct {
	At       time.Time `json:"at"`
	Error    string    `json:"error,omitempty"`
	Warnings []string  `json:"warnings"`
	// Broken are the definitions that could not be used; the apps they
	// name keep their last state.
	Broken   []BrokenView `json:"broken"`
	Apps     int          `json:"apps"`
	Clusters int          `json:"clusters"`
}

// BrokenView is a definition that could not be used.
type BrokenView struct {
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name,omitempty"`
	File  string `json:"file"`
	Error string `json:"error"`
}

// Cluster returns the entry of cluster in v.Clusters, or nil.
func (v AppView) Cluster(name string) *AppClusterView {
	for i := range v.Clusters {
		if v.Clusters[i].Cluster == name {
			return &v.Clusters[i]
		}
	}
	return nil
}
