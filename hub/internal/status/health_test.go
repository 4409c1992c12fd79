package status

import (
	"testing"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/health"
)

// agentWorst is what the agent aggregates an app's objects with.
func agentWorst(a, b apiv1alpha1.HealthStatus) apiv1alpha1.HealthStatus { return health.Worst(a, b) }

func healthOf(t *testing.T, name string) apiv1alpha1.HealthStatus {
	t.Helper()
	for v := range apiv1alpha1.HealthStatus_name {
		if h := apiv1alpha1.HealthStatus(v); h.Name() == name {
			return h
		}
	}
	t.Fatalf("no health status named %s", name)
	return 0
}
