package controller

import (
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// Snapshot is what the last reconcile computed, for the API and UI.
type Snapshot struct {
	At time.Time `json:"at"`
	// Error is set when the definitions could not be loaded; the previous
	// desired state stays in force.
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Broken are the definitions that could not be used; the apps they
	// name keep their last state (see AppState.Broken).
	Broken   []app.Broken   `json:"broken,omitempty"`
	Apps     []AppState     `json:"apps"`
	Clusters []ClusterState `json:"clusters"`
}

// AppState is one application as the hub sees it.
type AppState struct {
	Name string   `json:"name"`
	File string   `json:"file,omitempty"`
	Spec app.Spec `json:"spec"`
	// Revision is the commit the app's source resolved to (every source's,
	// joined by commas, for a multi-source app).
	Revision string `json:"revision,omitempty"`
	// Revisions are the commits of each source of a multi-source app.
	Revisions []string `json:"revisions,omitempty"`
	// Error is an app-wide problem (invalid policy, unreachable repo, a
	// definition that could not be used).
	Error string `json:"error,omitempty"`
	// Warnings are problems that do not stop the app, e.g. a destination
	// cluster that is not registered.
	Warnings []string `json:"warnings,omitempty"`
	// Parent is the app whose render defined this one (app-of-apps).
	Parent string `json:"parent,omitempty"`
	// Set is the ApplicationSet that generated the app.
	Set string `json:"set,omitempty"`
	// Broken: the app's definition could not be used; it keeps its last
	// state and bundles.
	Broken bool `json:"broken,omitempty"`
	// Hub: the app's destination is the hub (an app-of-apps root); it
	// has no targets, its Revision is its last render's.
	Hub     bool          `json:"hub,omitempty"`
	Targets []TargetState `json:"targets"`
}

// TargetState is one (app, cluster).
type TargetState struct {
	Cluster string `json:"cluster"`
	Digest  string `json:"digest,omitempty"`
	// Revision is the commit the bundle was rendered from; for an app with
	// several sources, every source's commit in order, joined by commas.
	Revision string `json:"revision,omitempty"`
	// Revisions are the commits of each source of a multi-source app.
	Revisions []string `json:"revisions,omitempty"`
	Path      string   `json:"path,omitempty"`
	Objects   int      `json:"objects"`
	// Error is the render, git or conflict error of this (app, cluster);
	// Digest then names the last good bundle still in force, if any.
	Error string `json:"error,omitempty"`
	// Pinned is the revision a rollback pinned this target to.
	Pinned string `json:"pinned,omitempty"`
	// SyncWindow says which sync window of the app's project holds
	// automated syncs (and self-heal) of this target now; "" when none
	// does. ManualSyncDenied: manual syncs are held too.
	SyncWindow       string `json:"syncWindow,omitempty"`
	ManualSyncDenied bool   `json:"manualSyncDenied,omitempty"`
	// Rollout says why the app's rollout keeps this target at its
	// previous revision ("waiting for step 2 (wave1)"); "" when it has
	// the app's revision.
	Rollout string `json:"rollout,omitempty"`
}

// ClusterState is a cluster with its effective labels.
type ClusterState struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// KubeVersion is the API server version the cluster's agent last
	// reported ("" until it reports one; see Controller.SetCapabilities).
	KubeVersion string `json:"kubeVersion,omitempty"`
}
