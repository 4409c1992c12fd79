//go:build !unit

package conformance

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWavesOrderObjects: Argo CD applies lower sync waves first and starts a
// wave only when the previous one is healthy. A ConfigMap in wave -1 exists
// before the Deployment of wave 0, whose rollout completes before the
// ConfigMap of wave 1 is created.
func TestWavesOrderObjects(t *testing.T) {
	c := NewCase(t, "waves-order")
	rev := c.Commit(map[string]string{
		"app/first.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: first
  annotations:
    argocd.argoproj.io/sync-wave: "-1"
data: {k: v}
`,
		"app/web.yaml": WebDeployment("", true),
		"app/last.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: last
  annotations:
    argocd.argoproj.io/sync-wave: "1"
data: {k: v}
`,
	})
	c.Define(c.ArgoApplication("app", ""))
	c.WaitSynced(rev, true)

	ctx := t.Context()
	first, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "first", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "last", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if web.CreationTimestamp.Before(&first.CreationTimestamp) {
		t.Errorf("Deployment web (wave 0) created at %s, before ConfigMap first (wave -1) at %s", web.CreationTimestamp, first.CreationTimestamp)
	}
	// The Deployment became Available (its rollout done) before wave 1
	// started: the Available condition's transition is not after the
	// ConfigMap of wave 1 was created (timestamps have second resolution).
	var available *metav1.Time
	for _, cond := range web.Status.Conditions {
		if cond.Type == "Available" && cond.Status == "True" {
			available = &cond.LastTransitionTime
		}
	}
	if available == nil {
		t.Fatalf("Deployment web is not Available: %+v", web.Status.Conditions)
	}
	if last.CreationTimestamp.Before(available) {
		t.Errorf("ConfigMap last (wave 1) created at %s, before Deployment web (wave 0) was Available at %s", last.CreationTimestamp, available)
	}
}

// TestWaveWaitsForJob: Argo CD counts a Job healthy only once it completed,
// so a migration Job in wave 0 holds wave 1 back until it finishes (kstatus
// alone calls a started Job Current). The ConfigMap of wave 1 is created no
// earlier than the Job's completion time.
func TestWaveWaitsForJob(t *testing.T) {
	c := NewCase(t, "waves-job")
	rev := c.Commit(map[string]string{
		"app/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: registry.invalid/migrate:1
`,
		"app/after.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: after-migration
  annotations:
    argocd.argoproj.io/sync-wave: "1"
data: {k: v}
`,
	})
	c.Define(c.ArgoApplication("app", ""))
	c.WaitSynced(rev, true)
	job, err := c.S.Kube.BatchV1().Jobs(c.Namespace).Get(t.Context(), "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Status.CompletionTime == nil {
		t.Fatalf("Job migrate has not completed although the app is Synced and Healthy: %+v", job.Status)
	}
	after, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(t.Context(), "after-migration", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.CreationTimestamp.Before(job.Status.CompletionTime) {
		t.Errorf("wave 1's ConfigMap created at %s, before wave 0's Job completed at %s", after.CreationTimestamp, job.Status.CompletionTime)
	}
}
