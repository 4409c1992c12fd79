package status

import (
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/health"
)

// The API's spellings of sync and health (HealthStatus.Name and
// SyncStatus.Name).
const (
	Synced    = "Synced"
	OutOfSync = "OutOfSync"
	Unknown   = "Unknown"
	Healthy   = "Healthy"
)

// ClusterSync is the sync status and health of an app on one cluster: what
// the hub wants there (want) against what the cluster's agent last reported
// (got, nil before any report). It is Synced only when the agent reports
// Synced for the digest the hub wants, and the hub could render the app's
// current revision for that cluster (a render error with a last good bundle
// in force is OutOfSync: git moved, the cluster did not).
func ClusterSync(want controller.TargetState, got *apiv1alpha1.AppStatus) (sync, hlth string) {
	if got == nil {
		return Unknown, Unknown
	}
	sync = OutOfSync // the agent has not applied what the hub wants yet
	if got.GetDigest() == want.Digest && want.Digest != "" {
		sync = got.GetSync().Name()
	}
	if want.Error != "" && sync == Synced {
		sync = OutOfSync
	}
	return sync, got.GetHealth().Name()
}

// AppSync aggregates an app's clusters: OutOfSync if any cluster is,
// else Unknown if any is not Synced, else Synced; health is the worst of
// the clusters' in shared/health's order. An app without targets is
// Unknown, except a hub app (an app-of-apps root) once rendered: its
// children are defined by then. An app-wide error makes a Synced app
// Unknown.
func AppSync(as controller.AppState, clusters []ClusterState) (sync, hlth string) {
	sync, hlth = Synced, Healthy
	for _, c := range clusters {
		switch {
		case c.Sync == Synced:
		case c.Sync == OutOfSync || sync == OutOfSync:
			sync = OutOfSync
		default:
			sync = Unknown
		}
		if health.RankName(c.Health) > health.RankName(hlth) {
			hlth = c.Health
		}
	}
	if len(as.Targets) == 0 && (!as.Hub || as.Revision == "") {
		sync, hlth = Unknown, Unknown
	}
	if as.Error != "" && sync == Synced {
		sync = Unknown
	}
	return sync, hlth
}

// ClusterState is one cluster's part of AppSync.
type ClusterState struct{ Sync, Health string }
