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

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
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
	const app, ns, replicas = "heal", "heal", int32(2)
	s, err := w.startOneHub(ctx, oneHubSpec{full: true, clusters: []string{"heal"}, label: "bench=heal", first: func(repoURL string) map[string]string {
		return merge(under("apps/src/heal", webApp(app, int(replicas), "1")), map[string]string{
			"apps/defs/heal.yaml": appDef(app, repoURL, "apps/src/heal", ns, toSelector("bench", "heal"), true),
		})
	}})
	if err != nil {
		return err
	}
	rev, cl, hub, agent := s.rev, s.clusters[0], s.hub, s.agent
	if _, err := waitApps(ctx, hub, 3*time.Minute, 50*time.Millisecond, syncedAt(app, rev, 1, nil)); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cl.RESTConfig())
	if err != nil {
		return err
	}
	stop := b.cpuProfile(ctx, agent.Proc, "selfheal-agent", rowSelfHeal)
	spaced, err := healSeries(ctx, hub, cs, ns, app, replicas, b.cfg.HealRepeats, healSpacing)
	stop()
	if err != nil {
		return err
	}
	// A failure of the fight series is a finding, not a harness error:
	// the samples before it and the failure are reported.
	fight, fightErr := healSeries(ctx, hub, cs, ns, app, replicas, b.cfg.HealRepeats/2, 0)
	fightNote := ""
	if fightErr != nil {
		fightNote = fmt.Sprintf(" FIGHT SERIES FAILED after %d heals: %v", len(fight), fightErr)
		b.notes = append(b.notes, "Self-heal, back-to-back series:"+fightNote+" (see the agent log of the run).")
	}
	if len(fight) == 0 {
		fight = samples{0}
	}
	half := spaced[len(spaced)/2:]
	met := spaced.pct(50) < 150*time.Millisecond && half.pct(50) < 150*time.Millisecond
	b.set(rowSelfHeal, fmt.Sprintf("p50 %s, p99 %s (n=%d, %s apart); 1st %s, last %s; 2nd half p50 %s. Back to back (a fight): 1st %s, max %s%s",
		secs(spaced.pct(50)), secs(spaced.pct(99)), len(spaced), healSpacing, secs(spaced[0]), secs(spaced[len(spaced)-1]), secs(half.pct(50)),
		secs(fight[0]), secs(fight.pct(100)), fightNote), met)
	b.detail("Self-heal", fmt.Sprintf(`A full cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok node) so that the
Deployment controller also writes to the object while it is fought over. App "heal" (a Deployment with %d
replicas, selfHeal on). Each sample: patch the Deployment's scale subresource to another replica count (as
`+"`kubectl scale`"+` does) and watch the Deployment until spec.replicas is %d again; the time runs from sending
the patch to the watch event.

Repeats as a person or script would make them: the next change %s after the previous one, once the hub shows
the app Synced again; %d times on the same Deployment: %s

Then a fight, as another controller would make it: the next change as soon as the hub shows the app Synced
(tens of milliseconds after the heal), %d times. The agent paces heals of one object that come less than 1 s
apart: 5 at once, then a backoff doubling from 250 ms up to 10 s (bounded): %s%s
`, replicas, replicas, healSpacing, len(spaced), spaced.list(), len(fight), fight.list(), fightNote))
	return nil
}

// healSpacing separates the repeats of the self-heal row.
const healSpacing = 2 * time.Second

// healSeries scales the Deployment n times, each spacing after the last
// change (0: as soon as the hub shows the app Synced again).
func healSeries(ctx context.Context, hub *harness.Hub, cs kubernetes.Interface, ns, app string, replicas int32, n int, spacing time.Duration) (samples, error) {
	deps := cs.AppsV1().Deployments(ns)
	var out samples
	for i := range n {
		next := time.Now().Add(spacing)
		d, err := deps.Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		took, err := healOnce(ctx, cs, d, replicas, replicas+3+int32(i%3))
		if err != nil {
			return nil, fmt.Errorf("self-heal %d: %w", i+1, err)
		}
		out = append(out, took)
		// Let the agent settle (it reports Synced again) before the next.
		if _, err := waitApps(ctx, hub, time.Minute, 20*time.Millisecond, func(apps map[string]api.AppView) error {
			for _, c := range apps[app].Clusters {
				if c.Sync != "Synced" {
					return fmt.Errorf("%s: %s", app, c.Sync)
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return out, nil
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
