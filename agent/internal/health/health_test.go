package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

const missing = apiv1alpha1.HealthStatus_HEALTH_STATUS_MISSING

func deployment(gen, observed, replicas, available int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "ns", "generation": gen},
		"spec":     map[string]any{"replicas": replicas},
		"status": map[string]any{
			"observedGeneration": observed, "replicas": replicas, "updatedReplicas": available,
			"readyReplicas": available, "availableReplicas": available,
			"conditions": []any{map[string]any{"type": "Available", "status": "True"}},
		},
	}}
}

func TestOf(t *testing.T) {
	t.Parallel()
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "ns"},
	}}
	failedJob := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": "j", "namespace": "ns", "generation": int64(1)},
		"spec":   map[string]any{"completions": int64(1), "backoffLimit": int64(0)},
		"status": map[string]any{"failed": int64(1), "conditions": []any{map[string]any{"type": "Failed", "status": "True"}}},
	}}
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		want apiv1alpha1.HealthStatus
	}{
		{"nil is missing", nil, missing},
		{"configmap exists", cm, healthy},
		{"deployment available", deployment(2, 2, 2, 2), healthy},
		{"deployment rolling out", deployment(2, 2, 2, 1), progressing},
		{"deployment not observed", deployment(3, 2, 2, 2), progressing},
		{"failed job", failedJob, degraded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Of(tc.obj).Status); diff != "" {
				t.Errorf("Of() (-want +got):\n%s", diff)
			}
		})
	}
}
