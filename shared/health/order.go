// Package health holds the one order of health statuses that the agent
// (aggregating an app's objects) and the hub (aggregating an app's
// clusters) both use: Argo CD's, from best to worst Healthy, Suspended,
// Progressing, Missing, Degraded, Unknown.
package health

import apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"

var order = []apiv1alpha1.HealthStatus{
	apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
	apiv1alpha1.HealthStatus_HEALTH_STATUS_SUSPENDED,
	apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING,
	apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING,
	apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED,
	apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN,
}

// Rank is h's place in the order (0 is best); a value outside it ranks as
// Unknown.
func Rank(h apiv1alpha1.HealthStatus) int {
	for i, o := range order {
		if o == h {
			return i
		}
	}
	return len(order) - 1
}

// RankName ranks a status by the API's spelling (HealthStatus.Name).
func RankName(name string) int {
	for i, o := range order {
		if o.Name() == name {
			return i
		}
	}
	return len(order) - 1
}

// Worse reports whether a is worse than b.
func Worse(a, b apiv1alpha1.HealthStatus) bool { return Rank(a) > Rank(b) }

// Worst returns the worst of hs; Healthy when hs is empty (nothing is
// unhealthy).
func Worst(hs ...apiv1alpha1.HealthStatus) apiv1alpha1.HealthStatus {
	w := apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY
	for _, h := range hs {
		if Worse(h, w) {
			w = h
		}
	}
	return w
}
