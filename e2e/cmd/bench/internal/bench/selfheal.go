package bench

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// selfHeal scales a Deployment out of band (the scale subresource, as
// `kubectl scale` does) again and again and measures until the agent has
// put the replicas back.
func (b *Bench) selfHeal(ctx context.Context) error {
	w, err := b.newWorld("selfheal")
	if err != nil {
		return err
	}
	defer w.close()
	repo, err := w.repo("config")
	if err != nil {
		return err
	}
	const app, ns, replicas = "heal", "heal", 2
	rev, _, err := commit(repo, "heal app", merge(under("apps/src/heal", webApp(app, replicas, "1")), map[string]string{
		"apps/defs/heal.yaml": appDef(app, repo.URL, "apps/src/heal", ns, toSelector("bench", "heal"), true),
	}))
	if err != nil {
		return err
	}
	b.logf("starting a full cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
	cls, err := w.clusters(ctx, true, "heal")
	if err != nil {
		return err
	}
	cl := cls[0]
	hub, err := w.hub(ctx, repo, time.Hour)
	if err != nil {
		return err
	}
	agent, err := w.enroll(ctx, hub, cl, "bench=heal")
	if err != nil {
		return err
	}
	if _, err := waitApps(ctx, hub, 3*time.Minute, 50*time.Millisecond, syncedAt(app, rev, 1, nil)); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cl.RESTConfig())
	if err != nil {
		return err
	}
	deps := cs.AppsV1().Deployments(ns)
	var out samples
	stop := b.cpuProfile(ctx, agent.Proc, "selfheal-agent", rowSelfHeal)
	defer stop()
	for i := range b.cfg.HealRepeats {
		d, err := deps.Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return err
		}
		took, err := healOnce(ctx, cs, d, replicas, int32(replicas+3+i%3))
		if err != nil {
			return fmt.Errorf("self-heal %d: %w", i+1, err)
		}
		out = append(out, took)
		// Let the agent settle (it reports Synced again) before the next.
		if _, err := waitApps(ctx, hub, time.Minute, 20*time.Millisecond, func(apps map[string]appView) error {
			for _, c := range apps[app].Clusters {
				if c.Sync != "Synced" {
					return fmt.Errorf("%s: %s", app, c.Sync)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	half := out[len(out)/2:]
	met := out.pct(50) < 150*time.Millisecond && half.pct(50) < 150*time.Millisecond
	b.set(rowSelfHeal, fmt.Sprintf("p50 %s, p99 %s (n=%d); 1st %s, last %s; 2nd half p50 %s",
		secs(out.pct(50)), secs(out.pct(99)), len(out), secs(out[0]), secs(out[len(out)-1]), secs(half.pct(50))), met)
	b.detail("Self-heal", fmt.Sprintf(`A full cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok node) so that the
Deployment controller also writes to the object while it is fought over. App "heal" (a Deployment with %d
replicas, selfHeal on). Each sample: set the Deployment's scale subresource to a different replica count
(as `+"`kubectl scale`"+` does) and watch the Deployment until spec.replicas is %d again; the time runs from
sending the scale request to the watch event. The next sample starts once the hub shows the app Synced
again, %d times on the same Deployment, to show that repeats are not slowed by a growing backoff.

Samples in order: %s
`, replicas, replicas, len(out), out.list()))
	return nil
}

// healOnce scales d to to and waits until a watch shows want replicas
// again.
func healOnce(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment, want, to int32) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	deps := cs.AppsV1().Deployments(d.Namespace)
	wi, err := deps.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", d.Name).String(),
		ResourceVersion: d.ResourceVersion,
	})
	if err != nil {
		return 0, err
	}
	defer wi.Stop()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, to))
	t0 := time.Now()
	if _, err := deps.Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-scale"}, "scale"); err != nil {
		return 0, err
	}
	scaled := false
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("deployment %s/%s not reverted to %d replicas: %w", d.Namespace, d.Name, want, ctx.Err())
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return 0, fmt.Errorf("watch of deployment %s/%s closed", d.Namespace, d.Name)
			}
			if ev.Type != watch.Modified {
				continue
			}
			got, ok := ev.Object.(*appsv1.Deployment)
			if !ok || got.Spec.Replicas == nil {
				continue
			}
			if *got.Spec.Replicas == to {
				scaled = true
			}
			if scaled && *got.Spec.Replicas == want {
				return time.Since(t0), nil
			}
		}
	}
}
