package health

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Result is the health of one object and a short human-readable reason.
type Result struct {
	Status  apiv1alpha1.HealthStatus
	Message string
}

// Of computes the health of a live object with kstatus. A nil object is
// Missing. kstatus results map as: Current → Healthy, InProgress and
// Terminating → Progressing, Failed → Degraded, NotFound → Missing, and
// anything else (including a kstatus error) → Unknown.
func Of(live *unstructured.Unstructured) Result {
	if live == nil {
		return Result{Status: apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING, Message: "object does not exist"}
	}
	res, err := status.Compute(live)
	if err != nil {
		return Result{Status: apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN, Message: err.Error()}
	}
	return Result{Status: fromKStatus(res.Status), Message: res.Message}
}

func fromKStatus(s status.Status) apiv1alpha1.HealthStatus {
	switch s {
	case status.CurrentStatus:
		return apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY
	case status.InProgressStatus, status.TerminatingStatus:
		return apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING
	case status.FailedStatus:
		return apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED
	case status.NotFoundStatus:
		return apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING
	default:
		return apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN
	}
}

// severity orders health from best to worst as Argo CD does: Healthy,
// Suspended, Progressing, Missing, Degraded, Unknown.
func severity(h apiv1alpha1.HealthStatus) int {
	switch h {
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY:
		return 0
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_SUSPENDED:
		return 1
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING:
		return 2
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING:
		return 3
	case apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED:
		return 4
	default:
		return 5
	}
}

// Worse reports whether a is worse than b.
func Worse(a, b apiv1alpha1.HealthStatus) bool { return severity(a) > severity(b) }

// Worst returns the worst of hs; Healthy when hs is empty (an app with no
// objects has nothing unhealthy).
func Worst(hs ...apiv1alpha1.HealthStatus) apiv1alpha1.HealthStatus {
	w := apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY
	for _, h := range hs {
		if Worse(h, w) {
			w = h
		}
	}
	return w
}
