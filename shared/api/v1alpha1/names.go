package apiv1alpha1

// The spellings of statuses that people read, in the hub's API, the CLI,
// the UI and both sides' metrics (Argo CD's words).

// Name returns "Synced", "OutOfSync" or "Unknown".
func (s SyncStatus) Name() string {
	switch s {
	case SyncStatus_SYNC_STATUS_SYNCED:
		return "Synced"
	case SyncStatus_SYNC_STATUS_OUT_OF_SYNC:
		return "OutOfSync"
	}
	return "Unknown"
}

// Name returns "Healthy", "Progressing", "Degraded", "Missing",
// "Suspended" or "Unknown".
func (h HealthStatus) Name() string {
	switch h {
	case HealthStatus_HEALTH_STATUS_HEALTHY:
		return "Healthy"
	case HealthStatus_HEALTH_STATUS_PROGRESSING:
		return "Progressing"
	case HealthStatus_HEALTH_STATUS_DEGRADED:
		return "Degraded"
	case HealthStatus_HEALTH_STATUS_MISSING:
		return "Missing"
	case HealthStatus_HEALTH_STATUS_SUSPENDED:
		return "Suspended"
	}
	return "Unknown"
}

// Name returns "Running", "Succeeded", "Failed" or "Unknown".
func (p Operation_Phase) Name() string {
	switch p {
	case Operation_PHASE_RUNNING:
		return "Running"
	case Operation_PHASE_SUCCEEDED:
		return "Succeeded"
	case Operation_PHASE_FAILED:
		return "Failed"
	}
	return "Unknown"
}

// Name returns "Running", "Succeeded", "Failed" or "Unknown".
func (s HookResult_Status) Name() string {
	switch s {
	case HookResult_STATUS_RUNNING:
		return "Running"
	case HookResult_STATUS_SUCCEEDED:
		return "Succeeded"
	case HookResult_STATUS_FAILED:
		return "Failed"
	}
	return "Unknown"
}
