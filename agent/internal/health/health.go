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

// Of computes the health of a live object as Argo CD assesses it: the
// kinds it has its own checks for (see byKind) first, kstatus for the rest.
// A nil object is Missing. kstatus results map as: Current → Healthy,
// InProgress and Terminating → Progressing, Failed → Degraded, NotFound →
// Missing, and anything else (including a kstatus error) → Unknown.
func Of(live *unstructured.Unstructured) Result {
	if live == nil {
		return Result{Status: apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING, Message: "object does not exist"}
	}
	if live.GetDeletionTimestamp() != nil {
		return Result{Status: apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING, Message: "being deleted"}
	}
	if check, ok := byKind[live.GroupVersionKind().GroupKind()]; ok {
		if r, decided := check(live); decided {
			return r
		}
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
