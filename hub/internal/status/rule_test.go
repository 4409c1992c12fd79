package status

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestClusterSync(t *testing.T) {
	t.Parallel()
	synced, outOfSync := apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
	healthy, degraded := apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY, apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED
	report := func(digest string, s apiv1alpha1.SyncStatus, h apiv1alpha1.HealthStatus) *apiv1alpha1.AppStatus {
		return &apiv1alpha1.AppStatus{App: "web", Digest: digest, Sync: s, Health: h}
	}
	tests := []struct {
		name       string
		want       controller.TargetState
		got        *apiv1alpha1.AppStatus
		sync, hlth string
	}{
		{"no report yet", controller.TargetState{Digest: "d1"}, nil, "Unknown", "Unknown"},
		{"agent synced the wanted digest", controller.TargetState{Digest: "d1"}, report("d1", synced, healthy), "Synced", "Healthy"},
		{"agent reports its own drift", controller.TargetState{Digest: "d1"}, report("d1", outOfSync, degraded), "OutOfSync", "Degraded"},
		{"agent synced an older digest", controller.TargetState{Digest: "d2"}, report("d1", synced, healthy), "OutOfSync", "Healthy"},
		{"hub has no bundle", controller.TargetState{}, report("", synced, healthy), "OutOfSync", "Healthy"},
		{"render error, last good bundle synced", controller.TargetState{Digest: "d1", Error: "render: boom"}, report("d1", synced, healthy), "OutOfSync", "Healthy"},
		{"agent sync unknown", controller.TargetState{Digest: "d1"}, report("d1", apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN, apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING), "Unknown", "Progressing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sync, hlth := ClusterSync(tc.want, tc.got)
			if diff := cmp.Diff([2]string{tc.sync, tc.hlth}, [2]string{sync, hlth}); diff != "" {
				t.Errorf("ClusterSync (sync, health) -want +got:\n%s", diff)
			}
		})
	}
}

func TestAppSync(t *testing.T) {
	t.Parallel()
	targets := []controller.TargetState{{Cluster: "a"}, {Cluster: "b"}}
	c := func(sync, hlth string) ClusterState { return ClusterState{Sync: sync, Health: hlth} }
	tests := []struct {
		name       string
		app        controller.AppState
		clusters   []ClusterState
		sync, hlth string
	}{
		{"all synced and healthy", controller.AppState{Targets: targets}, []ClusterState{c("Synced", "Healthy"), c("Synced", "Healthy")}, "Synced", "Healthy"},
		{"one out of sync", controller.AppState{Targets: targets}, []ClusterState{c("Synced", "Healthy"), c("OutOfSync", "Healthy")}, "OutOfSync", "Healthy"},
		{"out of sync beats unknown", controller.AppState{Targets: targets}, []ClusterState{c("OutOfSync", "Healthy"), c("Unknown", "Unknown")}, "OutOfSync", "Unknown"},
		{"unknown then out of sync", controller.AppState{Targets: targets}, []ClusterState{c("Unknown", "Healthy"), c("OutOfSync", "Healthy")}, "OutOfSync", "Healthy"},
		{"one unknown", controller.AppState{Targets: targets}, []ClusterState{c("Synced", "Healthy"), c("Unknown", "Unknown")}, "Unknown", "Unknown"},
		{"no targets", controller.AppState{Revision: "abc"}, nil, "Unknown", "Unknown"},
		{"hub app rendered", controller.AppState{Hub: true, Revision: "abc"}, nil, "Synced", "Healthy"},
		{"hub app not rendered yet", controller.AppState{Hub: true}, nil, "Unknown", "Unknown"},
		{"app error keeps clusters' health", controller.AppState{Targets: targets, Error: "repo unreachable"}, []ClusterState{c("Synced", "Healthy"), c("Synced", "Progressing")}, "Unknown", "Progressing"},
		{"app error, out of sync stays", controller.AppState{Targets: targets, Error: "repo unreachable"}, []ClusterState{c("OutOfSync", "Healthy")}, "OutOfSync", "Healthy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sync, hlth := AppSync(tc.app, tc.clusters)
			if diff := cmp.Diff([2]string{tc.sync, tc.hlth}, [2]string{sync, hlth}); diff != "" {
				t.Errorf("AppSync (sync, health) -want +got:\n%s", diff)
			}
		})
	}
}

// TestAppHealthOrder: an app's health is its worst cluster's, in the order
// the agent ranks an app's objects by (shared/health): Healthy, Suspended,
// Progressing, Missing, Degraded, Unknown.
func TestAppHealthOrder(t *testing.T) {
	t.Parallel()
	order := []string{"Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"}
	app := controller.AppState{Targets: []controller.TargetState{{Cluster: "a"}, {Cluster: "b"}}}
	for i, better := range order {
		for _, worse := range order[i:] {
			for _, cs := range [][]ClusterState{
				{{Sync: "Synced", Health: better}, {Sync: "Synced", Health: worse}},
				{{Sync: "Synced", Health: worse}, {Sync: "Synced", Health: better}},
			} {
				if _, got := AppSync(app, cs); got != worse {
					t.Errorf("clusters %v: app health %s, want %s", cs, got, worse)
				}
			}
		}
	}
	// The agent aggregates objects with the same order.
	for i, better := range order {
		for _, worse := range order[i:] {
			b, w := healthOf(t, better), healthOf(t, worse)
			if got := agentWorst(b, w).Name(); got != worse {
				t.Errorf("shared/health.Worst(%s, %s) = %s, want %s", better, worse, got, worse)
			}
		}
	}
}
