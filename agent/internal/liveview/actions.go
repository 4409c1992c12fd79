package liveview

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Actions the agent runs.
const (
	ActionRestart = "restart"
	ActionDelete  = "delete"
	ActionRun     = "run"
)

// restartedAt is the annotation `kubectl rollout restart` sets on a
// workload's pod template.
const restartedAt = "kubectl.kubernetes.io/restartedAt"

var (
	gvrPods = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrJobs = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
)

// action answers ACTION. restart and run act only on an object of the
// app's inventory that carries the app's tracking id; delete only on a Pod
// of the app's tree (the app's own, or owned by one of its objects).
func (s *Server) action(ctx context.Context, req *apiv1alpha1.LiveRequest) (*apiv1alpha1.LiveResponse, error) {
	ref := req.GetObject()
	var want []string
	switch req.GetAction() {
	case ActionRestart:
		want = []string{"apps/Deployment", "apps/StatefulSet", "apps/DaemonSet"}
	case ActionDelete:
		want = []string{"/Pod"}
	case ActionRun:
		want = []string{"batch/CronJob"}
	default:
		return nil, invalid("unknown action %q (restart, delete or run)", req.GetAction())
	}
	gk := ref.GetGroup() + "/" + ref.GetKind()
	allowed := false
	for _, w := range want {
		allowed = allowed || w == gk
	}
	if !allowed {
		return nil, invalid("action %s does not apply to %s", req.GetAction(), describe(ref))
	}
	_, n, err := s.lookup(ctx, req.GetApp(), ref)
	if err != nil {
		return nil, err
	}
	if req.GetAction() != ActionDelete && !n.tracked {
		return nil, notOwned("%s is not an object of application %q", describe(n.ref), req.GetApp())
	}
	s.log.Info("live action", "app", req.GetApp(), "action", req.GetAction(), "object", describe(n.ref), "by", req.GetInitiatedBy())
	switch req.GetAction() {
	case ActionRestart:
		return s.restart(ctx, n)
	case ActionDelete:
		return s.deletePod(ctx, n)
	default:
		return s.runCronJob(ctx, n)
	}
}

func (s *Server) restart(ctx context.Context, n *node) (*apiv1alpha1.LiveResponse, error) {
	now := time.Now().UTC().Format(time.RFC3339)
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{restartedAt: now},
	}}}})
	if err != nil {
		return nil, err
	}
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: resourceOf(n.ref.GetKind())}
	_, err = s.dyn.Resource(gvr).Namespace(n.obj.GetNamespace()).Patch(ctx, n.obj.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: s.opts.FieldManager})
	if err != nil {
		return nil, fmt.Errorf("restart %s: %w", describe(n.ref), err)
	}
	return &apiv1alpha1.LiveResponse{Message: fmt.Sprintf("%s restarted at %s", describe(n.ref), now)}, nil
}

func resourceOf(kind string) string {
	switch kind {
	case "Deployment":
		return "deployments"
	case "StatefulSet":
		return "statefulsets"
	default:
		return "daemonsets"
	}
}

func (s *Server) deletePod(ctx context.Context, n *node) (*apiv1alpha1.LiveResponse, error) {
	uid := n.obj.GetUID()
	err := s.dyn.Resource(gvrPods).Namespace(n.obj.GetNamespace()).Delete(ctx, n.obj.GetName(), metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid}, // the Pod that was checked, not a new one of the same name
	})
	if err != nil {
		return nil, fmt.Errorf("delete %s: %w", describe(n.ref), err)
	}
	return &apiv1alpha1.LiveResponse{Message: describe(n.ref) + " deleted"}, nil
}

// runCronJob creates a Job from the CronJob's jobTemplate, as `kubectl
// create job --from=cronjob/NAME` does.
func (s *Server) runCronJob(ctx context.Context, n *node) (*apiv1alpha1.LiveResponse, error) {
	cj := n.obj
	tmpl, ok, _ := unstructured.NestedMap(cj.Object, "spec", "jobTemplate")
	if !ok {
		return nil, invalid("%s has no jobTemplate", describe(n.ref))
	}
	name := fmt.Sprintf("%s-manual-%d", cj.GetName(), time.Now().Unix())
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	job := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "Job"}}
	if md, ok := tmpl["metadata"].(map[string]any); ok {
		job.Object["metadata"] = md
	}
	job.SetName(name)
	job.SetNamespace(cj.GetNamespace())
	ann := job.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann["cronjob.kubernetes.io/instantiate"] = "manual"
	job.SetAnnotations(ann)
	yes := true
	job.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: cj.GetAPIVersion(), Kind: cj.GetKind(), Name: cj.GetName(), UID: cj.GetUID(), Controller: &yes,
	}})
	if spec, ok := tmpl["spec"]; ok {
		job.Object["spec"] = spec
	}
	if _, err := s.dyn.Resource(gvrJobs).Namespace(cj.GetNamespace()).Create(ctx, job, metav1.CreateOptions{FieldManager: s.opts.FieldManager}); err != nil {
		return nil, fmt.Errorf("run %s: create Job %s: %w", describe(n.ref), name, err)
	}
	return &apiv1alpha1.LiveResponse{Message: fmt.Sprintf("job %s/%s created from %s", cj.GetNamespace(), name, describe(n.ref))}, nil
}
