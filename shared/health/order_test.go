package health

import (
	"testing"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestOrder(t *testing.T) {
	t.Parallel()
	names := []string{"Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"}
	for i, n := range names {
		if RankName(n) != i {
			t.Errorf("RankName(%s) = %d, want %d", n, RankName(n), i)
		}
		if Rank(order[i]) != i || order[i].Name() != n {
			t.Errorf("order[%d] = %v", i, order[i])
		}
	}
	if got := Worst(apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED, apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN, apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY); got != apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN {
		t.Errorf("Worst = %v, want Unknown", got)
	}
	if Worst() != apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY {
		t.Error("Worst of nothing is not Healthy")
	}
}
