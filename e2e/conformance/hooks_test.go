//go:build !unit

package conformance

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// jobLog records every Job of a namespace as a watch delivers it, the last
// state seen per Job (a deleted Job keeps its final state), so that the
// order of hook Jobs stays observable after their delete policy removed
// them.
type jobLog struct {
	mu    sync.Mutex
	jobs  map[types.UID]*batchv1.Job
	order []types.UID // by first sight
}

// watchJobs starts recording the Jobs of ns until the test ends.
func watchJobs(t *testing.T, c *Case, ns string) *jobLog {
	t.Helper()
	w, err := c.S.Kube.BatchV1().Jobs(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	l := &jobLog{jobs: map[types.UID]*batchv1.Job{}}
	go func() {
		for ev := range w.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok {
				continue
			}
			l.mu.Lock()
			if _, seen := l.jobs[j.UID]; !seen {
				l.order = append(l.order, j.UID)
			}
			l.jobs[j.UID] = j.DeepCopy()
			l.mu.Unlock()
		}
	}()
	return l
}

// named returns the recorded Jobs whose name starts with prefix, in the
// order they were first seen.
func (l *jobLog) named(prefix string) []*batchv1.Job {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*batchv1.Job
	for _, uid := range l.order {
		if j := l.jobs[uid]; strings.HasPrefix(j.Name, prefix) {
			out = append(out, j)
		}
	}
	return out
}

// completed waits until n Jobs named with prefix have been seen completed,
// and returns them.
func (l *jobLog) completed(c *Case, prefix string, n int) []*batchv1.Job {
	c.t.Helper()
	var jobs []*batchv1.Job
	c.Eventually(time.Minute, fmt.Sprintf("%d completed Jobs named %s*", n, prefix), func() error {
		jobs = l.named(prefix)
		done := 0
		for _, j := range jobs {
			if j.Status.CompletionTime != nil {
				done++
			}
		}
		if done != n || len(jobs) != n {
			return fmt.Errorf("%d Jobs seen, %d completed", len(jobs), done)
		}
		return nil
	})
	return jobs
}

// firstCompleted waits until a Job named with prefix has been seen
// completed and returns the first such Job seen (later runs may follow).
func (l *jobLog) firstCompleted(c *Case, prefix string) *batchv1.Job {
	c.t.Helper()
	var first *batchv1.Job
	c.Eventually(time.Minute, fmt.Sprintf("a completed Job named %s*", prefix), func() error {
		for _, j := range l.named(prefix) {
			if j.Status.CompletionTime != nil {
				first = j
				return nil
			}
		}
		return fmt.Errorf("none of %d Jobs seen completed", len(l.named(prefix)))
	})
	return first
}

// availableAt returns when the Deployment's Available condition turned
// true.
func availableAt(t *testing.T, d *appsv1.Deployment) metav1.Time {
	t.Helper()
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
			return cond.LastTransitionTime
		}
	}
	t.Fatalf("Deployment %s is not Available: %+v", d.Name, d.Status.Conditions)
	return metav1.Time{}
}

// notBefore fails unless later is not before earlier (kube timestamps have
// one-second resolution, so equal counts as in order).
func notBefore(t *testing.T, what string, later, earlier metav1.Time) {
	t.Helper()
	if later.Before(&earlier) {
		t.Errorf("%s: %s is before %s", what, later.UTC().Format(time.RFC3339), earlier.UTC().Format(time.RFC3339))
	}
}

func hookSummary(op *api.OperationView) []string {
	if op == nil {
		return nil
	}
	var out []string
	for _, h := range op.Hooks {
		out = append(out, fmt.Sprintf("%s %s %s %s deleted=%v", h.Phase, h.Kind, h.Hook, h.Status, h.Deleted))
	}
	return out
}

const hookJobSpec = `spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: run
        image: registry.invalid/tools:1
`

// TestHooksRunInPhases: Argo CD runs PreSync hooks before the Sync phase,
// skips an object marked Skip,
// the Sync phase in waves, and PostSync hooks once every object is Healthy;
// hooks run once per sync operation (a new commit), never on a self-heal;
// a hook with generateName gets a new name each run; HookSucceeded deletes
// a hook that succeeded; the default BeforeHookCreation deletes the last
// run's hook before the next is created, so a named hook Job whose template
// changed in git is re-created (never "spec.template is immutable"). Hooks
// are not among the app's objects.
func TestHooksRunInPhases(t *testing.T) {
	c := NewCase(t, "hooks-phases")
	jobs := watchJobs(t, c, c.Namespace)
	files := func(setting string) map[string]string {
		return map[string]string{
			"app/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  generateName: migrate-
  annotations:
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/hook-delete-policy: HookSucceeded
` + hookJobSpec,
			"app/settings.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data: {setting: "` + setting + `"}
`,
			"app/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
`,
			"app/skipped.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: skipped
  annotations:
    argocd.argoproj.io/hook: Skip
data: {k: v}
`,
			// The smoke Job's template changes with each commit: a Job's
			// template is immutable, so the next run must re-create it.
			"app/smoke.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: smoke
  annotations:
    argocd.argoproj.io/hook: PostSync
` + hookJobSpec + `        env: [{name: SETTING, value: "` + setting + `"}]
`,
		}
	}
	rev1 := c.Commit(files("one"))
	c.Define(c.ArgoApplication("app", ""))
	c.WaitSynced(rev1, true)

	ctx := t.Context()
	settings, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	migrate := jobs.completed(c, "migrate-", 1)[0]
	smoke := jobs.completed(c, "smoke", 1)[0]

	// PreSync: the migration completed before any Sync-phase object was
	// created.
	notBefore(t, "ConfigMap settings (Sync, wave 0) created after the PreSync Job completed", settings.CreationTimestamp, *migrate.Status.CompletionTime)
	notBefore(t, "Deployment web (Sync, wave 1) created after the PreSync Job completed", web.CreationTimestamp, *migrate.Status.CompletionTime)
	// PostSync: created once every Sync-phase object was Healthy.
	notBefore(t, "PostSync Job smoke created after Deployment web was Available", smoke.CreationTimestamp, availableAt(t, web))
	notBefore(t, "PostSync Job smoke created after ConfigMap settings", smoke.CreationTimestamp, settings.CreationTimestamp)

	if _, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "skipped", metav1.GetOptions{}); err == nil {
		t.Error("ConfigMap skipped (hook Skip) was applied")
	}

	// HookSucceeded: the migration Job is deleted; the PostSync Job
	// (default policy BeforeHookCreation) stays until the next run.
	c.Eventually(time.Minute, "PreSync Job (HookSucceeded) deleted", func() error {
		if _, err := c.S.Kube.BatchV1().Jobs(c.Namespace).Get(ctx, migrate.Name, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("Job %s still exists", migrate.Name)
		}
		return nil
	})
	if _, err := c.S.Kube.BatchV1().Jobs(c.Namespace).Get(ctx, "smoke", metav1.GetOptions{}); err != nil {
		t.Errorf("PostSync Job smoke (BeforeHookCreation) is gone after its run: %v", err)
	}

	// The operation reports each hook; hooks are not the app's objects.
	cl := c.App().Cluster(ClusterName)
	want := []string{"PreSync Job migrate- Succeeded deleted=true", "PostSync Job smoke Succeeded deleted=false"}
	if got := hookSummary(cl.LastOperation); !slices.Equal(got, want) {
		t.Errorf("hooks of the operation = %q, want %q", got, want)
	}
	if n := cl.LastOperation.Hooks[0].Name; n != migrate.Name {
		t.Errorf("PreSync hook reported as %q, created as %q", n, migrate.Name)
	}
	for _, o := range cl.Objects {
		if o.Kind == "Job" {
			t.Errorf("hook Job %s listed among the app's objects", o.Name)
		}
	}
	firstOp := cl.LastOperation.StartedAt

	// A self-heal (an edit of a Sync-phase object) is no sync operation:
	// it runs no hook.
	settings.Data["setting"] = "edited"
	if _, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Update(ctx, settings, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	c.Eventually(time.Minute, "edited ConfigMap settings healed", func() error {
		cm, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if v := cm.Data["setting"]; v != "one" {
			return fmt.Errorf("setting is %q", v)
		}
		return nil
	})
	c.WaitSynced(rev1, true)
	if op := c.App().Cluster(ClusterName).LastOperation; !op.StartedAt.Equal(firstOp) {
		t.Errorf("the self-heal started a sync operation at %s", op.StartedAt)
	}

	// A new commit runs the hooks again: a new migration Job, and the
	// PostSync Job replaced, in the same order.
	rev2 := c.Commit(files("two"))
	c.WaitSynced(rev2, true)
	migrates := jobs.completed(c, "migrate-", 2) // one per commit: the self-heal added none
	smokes := jobs.completed(c, "smoke", 2)
	if migrates[0].Name == migrates[1].Name {
		t.Errorf("both migration runs are named %s", migrates[0].Name)
	}
	settings, err = c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if settings.Data["setting"] != "two" {
		t.Errorf("setting = %q after the second commit", settings.Data["setting"])
	}
	if env := smokes[1].Spec.Template.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "two" {
		t.Errorf("second PostSync Job has env %v, want SETTING=two", env)
	}
	notBefore(t, "second PostSync Job created after the second migration completed", smokes[1].CreationTimestamp, *migrates[1].Status.CompletionTime)
	notBefore(t, "second PostSync Job created after the first one completed", smokes[1].CreationTimestamp, *smokes[0].Status.CompletionTime)
	if got := hookSummary(c.App().Cluster(ClusterName).LastOperation); !slices.Equal(got, want) {
		t.Errorf("hooks of the second operation = %q, want %q", got, want)
	}

	// The history keeps each operation's hooks.
	out, err := c.S.Hub.CLI(ctx, "app", "history", c.Name, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, `"phase": "PreSync"`)+strings.Count(out, `"phase":"PreSync"`) < 2 {
		t.Errorf("history does not show the PreSync hook of both operations:\n%s", out)
	}
}

// TestHelmHooksInPhases: a Helm chart's hooks are mapped as Argo CD maps
// them: pre-install hooks run in PreSync ordered by hook-weight,
// post-install hooks in PostSync, and test hooks never run.
func TestHelmHooksInPhases(t *testing.T) {
	c := NewCase(t, "hooks-helm")
	jobs := watchJobs(t, c, c.Namespace)
	rev := c.Commit(map[string]string{
		"chart/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
		"chart/templates/seed.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-seed
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
data: {seed: "yes"}
`,
		"chart/templates/db-init.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-db-init
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "1"
    helm.sh/hook-delete-policy: before-hook-creation
` + hookJobSpec,
		"chart/templates/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
`,
		"chart/templates/notify.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-notify
  annotations:
    helm.sh/hook: post-install,post-upgrade
` + hookJobSpec,
		"chart/templates/tests/ping.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-ping
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
  - name: ping
    image: registry.invalid/ping:1
`,
	})
	c.Define(c.ArgoApplication("chart", ""))
	c.WaitSynced(rev, true)

	ctx := t.Context()
	release := c.Name
	seed, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, release+"-seed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, release+"-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dbInit := jobs.completed(c, release+"-db-init", 1)[0]
	notify := jobs.completed(c, release+"-notify", 1)[0]

	notBefore(t, "PreSync Job db-init (weight 1) created after ConfigMap seed (weight -5)", dbInit.CreationTimestamp, seed.CreationTimestamp)
	notBefore(t, "Deployment created after the pre-install Job completed", web.CreationTimestamp, *dbInit.Status.CompletionTime)
	notBefore(t, "post-install Job created after the Deployment was Available", notify.CreationTimestamp, availableAt(t, web))
	if _, err := c.S.Kube.CoreV1().Pods(c.Namespace).Get(ctx, release+"-ping", metav1.GetOptions{}); err == nil {
		t.Error("the Helm test hook Pod was created")
	}
	want := []string{
		"PreSync ConfigMap " + release + "-seed Succeeded deleted=false",
		"PreSync Job " + release + "-db-init Succeeded deleted=false",
		"PostSync Job " + release + "-notify Succeeded deleted=false",
	}
	if got := hookSummary(c.App().Cluster(ClusterName).LastOperation); !slices.Equal(got, want) {
		t.Errorf("hooks of the operation = %q, want %q", got, want)
	}
}

// TestSyncFailHookOnFailedPreSync: a PreSync Job that fails (here its
// deadline passes: its Pod cannot be created, the ServiceAccount does not
// exist) fails the operation before the Sync phase, the SyncFail hook runs
// after the failure, and HookFailed deletes the failed Job. Once git no
// longer fails, the app syncs.
func TestSyncFailHookOnFailedPreSync(t *testing.T) {
	c := NewCase(t, "hooks-syncfail")
	jobs := watchJobs(t, c, c.Namespace)
	settings := `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data: {k: v}
`
	cleanup := `apiVersion: batch/v1
kind: Job
metadata:
  generateName: cleanup-
  annotations:
    argocd.argoproj.io/hook: SyncFail
` + hookJobSpec
	rev1 := c.Commit(map[string]string{
		"app/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  generateName: migrate-
  annotations:
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/hook-delete-policy: HookFailed
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 1
  template:
    spec:
      restartPolicy: Never
      serviceAccountName: does-not-exist
      containers:
      - name: run
        image: registry.invalid/tools:1
`,
		"app/settings.yaml": settings,
		"app/cleanup.yaml":  cleanup,
	})
	c.Define(c.ArgoApplication("app", ""))

	ctx := t.Context()
	cleanup1 := jobs.firstCompleted(c, "cleanup-") // retries of the operation run it again
	c.Eventually(time.Minute, "the operation reported failed", func() error {
		cl := c.App().Cluster(ClusterName)
		if cl == nil || cl.LastOperation == nil || cl.LastOperation.Phase != "Failed" || cl.LastOperation.Revision != rev1 {
			return fmt.Errorf("last operation %+v", cl)
		}
		return nil
	})
	var failedAt *metav1.Time
	for _, j := range jobs.named("migrate-") {
		for _, cond := range j.Status.Conditions {
			if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue && (failedAt == nil || cond.LastTransitionTime.Before(failedAt)) {
				failedAt = cond.LastTransitionTime.DeepCopy()
			}
		}
	}
	if failedAt == nil {
		t.Fatal("no PreSync Job was seen Failed")
	}
	notBefore(t, "SyncFail Job created after the PreSync Job failed", cleanup1.CreationTimestamp, *failedAt)
	if _, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "settings", metav1.GetOptions{}); err == nil {
		t.Error("ConfigMap settings (Sync phase) applied although the PreSync hook failed")
	}
	op := c.App().Cluster(ClusterName).LastOperation
	if !strings.Contains(op.Message, "PreSync") {
		t.Errorf("operation message %q does not name the PreSync phase", op.Message)
	}
	c.Eventually(time.Minute, "failed PreSync Job (HookFailed) deleted", func() error {
		for _, j := range jobs.named("migrate-") {
			if _, err := c.S.Kube.BatchV1().Jobs(c.Namespace).Get(ctx, j.Name, metav1.GetOptions{}); err == nil {
				for _, cond := range j.Status.Conditions {
					if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue {
						return fmt.Errorf("failed Job %s still exists", j.Name)
					}
				}
			}
		}
		return nil
	})

	// Without the failing hook the next commit syncs.
	if err := c.Repo.Write(map[string][]byte{"app/migrate.yaml": nil}); err != nil {
		t.Fatal(err)
	}
	rev2 := c.Commit(map[string]string{"app/settings.yaml": settings})
	c.WaitSynced(rev2, true)
	if _, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "settings", metav1.GetOptions{}); err != nil {
		t.Errorf("ConfigMap settings after the fix: %v", err)
	}
}

// TestGenerateNameOnlyForHooks: as in Argo CD, metadata.generateName is for
// hooks; an ordinary object with it is refused with an error naming it, on
// the app, and nothing of the commit is applied.
func TestGenerateNameOnlyForHooks(t *testing.T) {
	c := NewCase(t, "hooks-generatename")
	c.Commit(map[string]string{
		"app/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  generateName: config-
data: {k: v}
`,
	})
	c.Define(c.ArgoApplication("app", ""))
	c.Eventually(time.Minute, "the app shows the refusal", func() error {
		a, err := c.S.Hub.App(t.Context(), c.Name)
		if err != nil {
			return err // not listed yet
		}
		if e := Errors(a); !strings.Contains(e, `ConfigMap with metadata.generateName "config-" is not a hook`) {
			return fmt.Errorf("app errors: %q", e)
		}
		return nil
	})
	cms, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).List(t.Context(), metav1.ListOptions{})
	if err == nil {
		for _, cm := range cms.Items {
			if strings.HasPrefix(cm.Name, "config-") {
				t.Errorf("ConfigMap %s created from a generateName that is not a hook", cm.Name)
			}
		}
	}
}
