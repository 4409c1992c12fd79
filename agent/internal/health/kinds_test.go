package health

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// TestByKind: the health Argo CD's documentation gives each kind, which
// gates waves and phases. kstatus alone called the running Job, the
// Service and Ingress without an address and the paused Deployment
// Healthy.
func TestByKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		want      apiv1alpha1.HealthStatus
		says      string
	}{
		{"job running", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, generation: 1}\nstatus: {active: 1, startTime: '2026-01-01T00:00:00Z'}\n", progressing, "not completed"},
		{"job complete", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nstatus: {succeeded: 1, conditions: [{type: Complete, status: 'True'}]}\n", healthy, ""},
		{"job failed", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nstatus: {failed: 1, conditions: [{type: Failed, status: 'True', message: 'Job has reached the specified backoff limit'}]}\n", degraded, "backoff limit"},
		{"job suspended", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: {suspend: true}\n", suspended, "suspended"},
		{"pod running ready", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {phase: Running, containerStatuses: [{name: c, ready: true}]}\n", healthy, ""},
		{"pod running not ready", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {phase: Running, containerStatuses: [{name: c, ready: false}]}\n", progressing, ""},
		{"pod crash loop", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {phase: Running, containerStatuses: [{name: app, ready: false, state: {waiting: {reason: CrashLoopBackOff, message: back-off 5m0s}}}]}\n", degraded, "container app: CrashLoopBackOff"},
		{"pod image pull", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {phase: Pending, containerStatuses: [{name: app, ready: false, state: {waiting: {reason: ImagePullBackOff}}}]}\n", degraded, "ImagePullBackOff"},
		{"pod succeeded", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {phase: Succeeded}\n", healthy, ""},
		{"pod failed", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {phase: Failed, message: OOMKilled}\n", degraded, "OOMKilled"},
		{"pvc bound", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nstatus: {phase: Bound}\n", healthy, ""},
		{"pvc pending", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nstatus: {phase: Pending}\n", progressing, ""},
		{"pvc lost", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nstatus: {phase: Lost}\n", degraded, ""},
		{"service cluster ip", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: ClusterIP}\n", healthy, ""},
		{"service lb waiting", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: LoadBalancer}\n", progressing, "load balancer"},
		{"service lb ready", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 10.0.0.1}]}}\n", healthy, ""},
		{"ingress waiting", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\n", progressing, "address"},
		{"ingress ready", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nstatus: {loadBalancer: {ingress: [{hostname: lb.example.com}]}}\n", healthy, ""},
		{"deployment paused", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {paused: true}\n", suspended, "paused"},
		{"deployment deadline", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded, message: 'ReplicaSet \"d-1\" has timed out progressing.'}]}\n", degraded, "timed out"},
		{"apiservice available", "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.x.io}\nstatus: {conditions: [{type: Available, status: 'True'}]}\n", healthy, ""},
		{"apiservice unavailable", "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.x.io}\nstatus: {conditions: [{type: Available, status: 'False', reason: MissingEndpoints, message: 'endpoints for service/x in x have no addresses'}]}\n", degraded, "no addresses"},
		{"crd established", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.x.io}\nstatus: {conditions: [{type: Established, status: 'True'}]}\n", healthy, ""},
		{"crd pending", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.x.io}\n", progressing, ""},
		{"crd names refused", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.x.io}\nstatus: {conditions: [{type: NamesAccepted, status: 'False', message: 'plural is already in use'}]}\n", degraded, "already in use"},
		{"hpa cannot scale", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nstatus: {conditions: [{type: ScalingActive, status: 'False', reason: FailedGetResourceMetric, message: 'unable to get metrics'}]}\n", degraded, "unable to get metrics"},
		{"hpa fine", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nstatus: {conditions: [{type: AbleToScale, status: 'True'}]}\n", healthy, ""},
		{"being deleted", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, deletionTimestamp: '2026-01-01T00:00:00Z'}\n", progressing, "deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Of(obj(t, tc.doc))
			if got.Status != tc.want || !strings.Contains(got.Message, tc.says) {
				t.Errorf("Of = %v %q, want %v saying %q", got.Status, got.Message, tc.want, tc.says)
			}
		})
	}
}
