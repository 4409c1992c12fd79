package health

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// check assesses one kind; decided is false when kstatus should decide.
type check func(*unstructured.Unstructured) (r Result, decided bool)

// byKind are the kinds whose health Argo CD assesses its own way, written
// from its documentation. kstatus, which decides the others, calls a Job
// Current as soon as it started, a Service or Ingress Current without an
// address, and a paused Deployment Current.
var byKind = map[schema.GroupKind]check{
	{Group: "batch", Kind: "Job"}:                                     jobHealth,
	{Kind: "Pod"}:                                                     podHealth,
	{Kind: "PersistentVolumeClaim"}:                                   pvcHealth,
	{Kind: "Service"}:                                                 serviceHealth,
	{Group: "networking.k8s.io", Kind: "Ingress"}:                     ingressHealth,
	{Group: "apps", Kind: "Deployment"}:                               deploymentHealth,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:             apiServiceHealth,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: crdHealth,
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:           hpaHealth,
}

var (
	healthy     = apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY
	progressing = apiv1alpha1.HealthStatus_HEALTH_STATUS_PROGRESSING
	degraded    = apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED
	suspended   = apiv1alpha1.HealthStatus_HEALTH_STATUS_SUSPENDED
)

// condition returns the status, reason and message of condition typ.
func condition(obj *unstructured.Unstructured, typ string) (status, reason, message string, found bool) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != typ {
			continue
		}
		status, _ = m["status"].(string)
		reason, _ = m["reason"].(string)
		message, _ = m["message"].(string)
		return status, reason, message, true
	}
	return "", "", "", false
}

func jobHealth(j *unstructured.Unstructured) (Result, bool) {
	if s, _, msg, _ := condition(j, "Failed"); s == "True" {
		return Result{degraded, orText(msg, "job failed")}, true
	}
	if s, _, _, _ := condition(j, "Complete"); s == "True" {
		return Result{healthy, "job completed"}, true
	}
	if susp, _, _ := unstructured.NestedBool(j.Object, "spec", "suspend"); susp {
		return Result{suspended, "job is suspended"}, true
	}
	return Result{progressing, "job has not completed"}, true
}

func podHealth(p *unstructured.Unstructured) (Result, bool) {
	phase, _, _ := unstructured.NestedString(p.Object, "status", "phase")
	msg, _, _ := unstructured.NestedString(p.Object, "status", "message")
	switch phase {
	case "Succeeded":
		return Result{healthy, orText(msg, "pod completed")}, true
	case "Failed":
		return Result{degraded, orText(msg, "pod failed")}, true
	}
	// A container that cannot start is Degraded, whatever the phase.
	statuses, _, _ := unstructured.NestedSlice(p.Object, "status", "containerStatuses")
	allReady := len(statuses) > 0
	for _, cs := range statuses {
		m, _ := cs.(map[string]any)
		if ready, _ := m["ready"].(bool); !ready {
			allReady = false
		}
		reason, _, _ := unstructured.NestedString(m, "state", "waiting", "reason")
		switch reason {
		case "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
			wmsg, _, _ := unstructured.NestedString(m, "state", "waiting", "message")
			name, _ := m["name"].(string)
			return Result{degraded, strings.TrimSpace(fmt.Sprintf("container %s: %s %s", name, reason, wmsg))}, true
		}
	}
	if phase == "Running" && allReady {
		return Result{healthy, "pod is running and ready"}, true
	}
	return Result{progressing, orText(msg, "pod is "+strings.ToLower(orText(phase, "pending")))}, true
}

func pvcHealth(c *unstructured.Unstructured) (Result, bool) {
	switch phase, _, _ := unstructured.NestedString(c.Object, "status", "phase"); phase {
	case "Bound":
		return Result{healthy, "claim is bound"}, true
	case "Lost":
		return Result{degraded, "claim lost its volume"}, true
	}
	return Result{progressing, "claim is not bound yet"}, true
}

func hasIngress(obj *unstructured.Unstructured) bool {
	ing, _, _ := unstructured.NestedSlice(obj.Object, "status", "loadBalancer", "ingress")
	return len(ing) > 0
}

func serviceHealth(s *unstructured.Unstructured) (Result, bool) {
	if t, _, _ := unstructured.NestedString(s.Object, "spec", "type"); t != "LoadBalancer" {
		return Result{healthy, ""}, true
	}
	if hasIngress(s) {
		return Result{healthy, "load balancer has an address"}, true
	}
	return Result{progressing, "waiting for the load balancer's address"}, true
}

func ingressHealth(i *unstructured.Unstructured) (Result, bool) {
	if hasIngress(i) {
		return Result{healthy, "ingress has an address"}, true
	}
	return Result{progressing, "waiting for the ingress's address"}, true
}

func deploymentHealth(d *unstructured.Unstructured) (Result, bool) {
	if paused, _, _ := unstructured.NestedBool(d.Object, "spec", "paused"); paused {
		return Result{suspended, "deployment is paused"}, true
	}
	if _, reason, msg, _ := condition(d, "Progressing"); reason == "ProgressDeadlineExceeded" {
		return Result{degraded, orText(msg, "deployment exceeded its progress deadline")}, true
	}
	return Result{}, false // kstatus follows the rollout
}

func apiServiceHealth(a *unstructured.Unstructured) (Result, bool) {
	s, reason, msg, found := condition(a, "Available")
	switch {
	case s == "True":
		return Result{healthy, ""}, true
	case found && s == "False":
		return Result{degraded, orText(msg, reason)}, true
	}
	return Result{progressing, "waiting for the API service to be available"}, true
}

func crdHealth(c *unstructured.Unstructured) (Result, bool) {
	if s, _, msg, _ := condition(c, "NamesAccepted"); s == "False" {
		return Result{degraded, orText(msg, "names not accepted")}, true
	}
	if s, _, _, _ := condition(c, "Established"); s == "True" {
		return Result{healthy, ""}, true
	}
	return Result{progressing, "waiting for the CRD to be established"}, true
}

func hpaHealth(h *unstructured.Unstructured) (Result, bool) {
	for _, typ := range []string{"AbleToScale", "ScalingActive"} {
		if s, reason, msg, _ := condition(h, typ); s == "False" && reason != "ScalingDisabled" {
			return Result{degraded, orText(msg, reason)}, true
		}
	}
	return Result{healthy, ""}, true
}

func orText(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
