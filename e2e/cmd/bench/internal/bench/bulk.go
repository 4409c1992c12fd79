package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// bulk adds many new apps at once on one full cluster (controller-manager,
// scheduler and a kwok node, so that Deployments become available) and
// measures until all are Synced, and how long after the cluster itself had
// every Deployment available the hub showed every app Healthy.
func (b *Bench) bulk(ctx context.Context) error {
	w, err := b.newWorld("bulk")
	if err != nil {
		return err
	}
	defer w.close()
	s, err := w.startOneHub(ctx, oneHubSpec{full: true, clusters: []string{"bulk"}, label: "bench=bulk"})
	if err != nil {
		return err
	}
	repo, cl, hub, agent := s.repo, s.clusters[0], s.hub, s.agent
	cs, err := kubernetes.NewForConfig(cl.RESTConfig())
	if err != nil {
		return err
	}
	ready := newReadiness()
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Apps().V1().Deployments().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { ready.observe(o) },
		UpdateFunc: func(_, o any) { ready.observe(o) },
	}); err != nil {
		return err
	}
	ictx, cancel := context.WithCancel(ctx)
	f.Start(ictx.Done())
	// Shutdown waits for the informers, which stop when ictx ends.
	defer func() {
		cancel()
		f.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("bulk: Deployment informer did not sync")
	}

	n := b.cfg.BulkApps
	files := map[string]string{}
	names := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("bulk-%04d", i+1)
		names[i] = name
		files["apps/defs/"+name+".yaml"] = appDef(name, repo.URL, "apps/src/"+name, name, toSelector("bench", "bulk"), true)
		for k, v := range under("apps/src/"+name, webApp(name, 1, "1")) {
			files[k] = v
		}
	}
	rev, _, err := commit(repo, fmt.Sprintf("%d new apps", n), files)
	if err != nil {
		return err
	}
	procs := map[string][]int{"flotilla-hub": {hub.Proc.PID()}, "flotilla-agent": {agent.Proc.PID()}, "bench (this process)": {os.Getpid()}}
	for _, pid := range cl.PIDs() {
		procs[componentName(pid)] = append(procs[componentName(pid)], pid)
	}
	writes0, err := apiRequests(ctx, cs)
	if err != nil {
		return err
	}
	stopHub, stopAgent := b.cpuProfile(ctx, hub.Proc, "bulk-hub", rowBulk), b.cpuProfile(ctx, agent.Proc, "bulk-agent", rowBulk)
	stopAPI := b.apiServerCPUProfile(ctx, cs, 20*time.Second, "bulk-apiserver", rowBulk)
	share := newCPUShare(procs)
	t0 := time.Now()
	if err := hub.PushWebhookAt(ctx, repo.URL, rev); err != nil {
		return err
	}
	synced := allSyncedOn(cl.Name(), rev, names)
	var syncedAt, healthyAt time.Time
	var cpuAtSynced, requestsAtSynced string
	_, err = followApps(ctx, hub, 10*time.Minute, func(apps map[string]api.AppView) error {
		now := time.Now()
		if syncedAt.IsZero() && synced(apps) == nil {
			syncedAt = now
			cpuAtSynced = share.since(now.Sub(t0))
			if w, err := apiRequests(ctx, cs); err == nil {
				requestsAtSynced = requestDiff(writes0, w)
			} else {
				requestsAtSynced = err.Error()
			}
		}
		if healthyAt.IsZero() {
			if err := allHealthyOn(cl.Name(), names)(apps); err != nil {
				return err
			}
			healthyAt = now
		}
		if syncedAt.IsZero() {
			return fmt.Errorf("all Healthy but not all Synced")
		}
		if r := ready.count(names); r < n {
			return fmt.Errorf("hub shows all Healthy but the cluster has %d/%d Deployments available", r, n)
		}
		return nil
	})
	stopHub()
	stopAgent()
	stopAPI()
	if err != nil {
		return fmt.Errorf("bulk %d new apps: %w", n, err)
	}
	readyAt := ready.last(names)
	took := syncedAt.Sub(t0)
	lag := healthyAt.Sub(readyAt)
	b.row(rowBulk).Figure = fmt.Sprintf("%d new apps on one real cluster → all Synced", n)
	b.set(rowBulk, fmt.Sprintf("%s (%d apps, %d objects)", secs(took), n, 3*n), took < 15*time.Second)
	b.row(rowBulkHealth).Figure = fmt.Sprintf("%d new apps: all Healthy reported after the cluster's own readiness", n)
	b.set(rowBulkHealth, fmt.Sprintf("%s after the last Deployment became available (that was %s after the webhook; hub all Healthy at %s)",
		secs(lag), secs(readyAt.Sub(t0)), secs(healthyAt.Sub(t0))), lag < 5*time.Second)
	b.detail("1,000 new apps on one cluster", fmt.Sprintf(`A full cluster (etcd, kube-apiserver, controller-manager, scheduler, one kwok node, so that
Deployments become available), one agent, one hub following an app-of-apps repo. One commit adds %d
Application definitions and their sources (a Deployment with 1 replica, a Service and a ConfigMap each: %d
objects), followed by a webhook. The bench waits as a user's tool does: it follows the hub's event stream
(GET /api/v1/events) and re-reads the app list on each change event (at most one per 100 ms): all Synced
%s after the webhook.
The cluster's own readiness is read from the API server by an informer on Deployments (available replicas =
spec.replicas at the current generation): the last of the %d became available %s after the webhook; the hub
showed every app Healthy %s after the webhook, %s later (upper bound within one event and list read).

Where the machine's CPU went from the webhook to all Synced (/proc of each process): %s.

Requests the cluster's API server answered in the same window (apiserver_request_total by verb and
resource; the agent writes namespaces, Deployments, Services, ConfigMaps and its Secrets in
flotilla-system, the cluster's own controllers the rest; the bench's Deployment informer is among the
readers): %s.
`, n, 3*n, secs(took), n, secs(readyAt.Sub(t0)), secs(healthyAt.Sub(t0)), secs(lag), cpuAtSynced, requestsAtSynced))
	return nil
}

// allHealthyOn is a condition: every app in names is Healthy on cluster.
func allHealthyOn(cluster string, names []string) func(map[string]api.AppView) error {
	return func(apps map[string]api.AppView) error {
		done := 0
		var first string
		for _, name := range names {
			h := ""
			for _, c := range apps[name].Clusters {
				if c.Cluster == cluster {
					h = c.Health
				}
			}
			if h == "Healthy" {
				done++
			} else if first == "" {
				first = name + ": " + h
			}
		}
		if done != len(names) {
			return fmt.Errorf("%d/%d apps Healthy on %s (%s)", done, len(names), cluster, first)
		}
		return nil
	}
}

// readiness records when each Deployment (by namespace/name) first became
// available in the cluster.
type readiness struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newReadiness() *readiness { return &readiness{at: map[string]time.Time{}} }

func (r *readiness) observe(o any) {
	d, ok := o.(*appsv1.Deployment)
	if !ok {
		return
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas < want || d.Status.UpdatedReplicas < want {
		return
	}
	key := d.Namespace + "/" + d.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.at[key]; !seen {
		r.at[key] = time.Now()
	}
}

// count is how many of the apps' Deployments (app name = namespace =
// Deployment name) are available.
func (r *readiness) count(names []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, name := range names {
		if _, ok := r.at[name+"/"+name]; ok {
			n++
		}
	}
	return n
}

// last is when the last of the apps' Deployments became available.
func (r *readiness) last(names []string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t time.Time
	for _, name := range names {
		if a := r.at[name+"/"+name]; a.After(t) {
			t = a
		}
	}
	return t
}
