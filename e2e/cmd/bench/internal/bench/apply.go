package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// apply measures 1,000 new objects applied by the agent and by kubectl
// (client-side and server-side apply, one file per object) on the same API
// server, that re-applying the unchanged bundle writes nothing, and the
// agent's memory with the objects under management.
func (b *Bench) apply(ctx context.Context) error {
	w, err := b.newWorld("apply")
	if err != nil {
		return err
	}
	defer w.close()
	s, err := w.startOneHub(ctx, oneHubSpec{clusters: []string{"apply"}, label: "bench=apply"})
	if err != nil {
		return err
	}
	repo, cl, hub, agent := s.repo, s.clusters[0], s.hub, s.agent
	cs, err := kubernetes.NewForConfig(cl.RESTConfig())
	if err != nil {
		return err
	}

	const app = "objects"
	n := b.cfg.Objects
	objs := objectFiles(n)
	rev, _, err := commit(repo, fmt.Sprintf("%d objects", n), merge(under("apps/src/"+app, objs), map[string]string{
		"apps/defs/" + app + ".yaml": appDef(app, repo.URL, "apps/src/"+app, app, toClusters(cl.Name()), true),
	}))
	if err != nil {
		return err
	}
	procs := map[string][]int{"flotilla-hub": {hub.Proc.PID()}, "flotilla-agent": {agent.Proc.PID()}, "bench (this process)": {os.Getpid()}}
	for _, pid := range cl.PIDs() {
		procs[componentName(pid)] = append(procs[componentName(pid)], pid)
	}
	stopHub, stopAgent := b.cpuProfile(ctx, hub.Proc, "apply-hub", rowApply), b.cpuProfile(ctx, agent.Proc, "apply-agent", rowApply)
	share := newCPUShare(procs)
	t0 := time.Now()
	if err := hub.PushWebhookAt(ctx, repo.URL, rev); err != nil {
		return err
	}
	at, err := waitApps(ctx, hub, 5*time.Minute, 20*time.Millisecond, syncedAt(app, rev, 1, nil))
	firstCPU := share.since(time.Since(t0))
	stopHub()
	stopAgent()
	if err != nil {
		return fmt.Errorf("apply %d objects: %w", n, err)
	}
	agentTook := at.Sub(t0)
	opTook, _ := syncLogged(agent.Proc, "initiated_by=automated")
	if got, err := countObjects(ctx, cs, app); err != nil || got != n {
		return fmt.Errorf("namespace %s holds %d objects after sync, want %d (%v)", app, got, n, err)
	}

	// Re-apply the unchanged bundle: a sync command makes the agent apply
	// it again; count the API server's write requests and compare the
	// objects' resourceVersions.
	rvBefore, err := resourceVersions(ctx, cs, app)
	if err != nil {
		return err
	}
	wBefore, err := apiWrites(ctx, cs)
	if err != nil {
		return err
	}
	if err := hub.DoJSON(ctx, "POST", "/api/v1/apps/"+app+"/sync", api.SyncRequest{}, nil); err != nil {
		return err
	}
	// The agent logs each sync with who started it and how long it took.
	var reSync time.Duration
	if err := harness.Eventually(ctx, 2*time.Minute, 20*time.Millisecond, func() error {
		d, ok := syncLogged(agent.Proc, "initiated_by=admin")
		if !ok {
			return fmt.Errorf("agent has not logged the requested sync of %s yet", app)
		}
		reSync = d
		return nil
	}); err != nil {
		return fmt.Errorf("re-apply: %w", err)
	}
	select { // writes the agent might make after reporting
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	wAfter, err := apiWrites(ctx, cs)
	if err != nil {
		return err
	}
	rvAfter, err := resourceVersions(ctx, cs, app)
	if err != nil {
		return err
	}
	changed := 0
	for k, rv := range rvBefore {
		if rvAfter[k] != rv {
			changed++
		}
	}
	writes, byRes, others := diffWrites(wBefore, wAfter)
	b.set(rowNoWrites, fmt.Sprintf("%d API writes, %d of %d objects' resourceVersions changed; re-apply took %s",
		writes, changed, len(rvBefore), secs(reSync)), writes == 0 && changed == 0)

	m, err := sampleRSS(ctx, 10*time.Second, hub.Proc, agent.Proc)
	if err != nil {
		return err
	}
	rss := m.lastB
	b.heapProfile(ctx, agent.Proc, "apply-agent", rowAgentRSS)
	b.set(rowAgentRSS, fmt.Sprintf("%s 10 s after Synced, %d objects (anonymous %s, file-backed %s; peak %s)", mib(rss), n, mib(m.lastAnonB), mib(m.lastFileB), mib(m.peakB)), rss < 50<<20)

	// Two more samples of the apply, each a new app of n objects in its
	// own namespace, so that the row is a median rather than one run.
	totals, ops := samples{agentTook}, samples{opTook}
	for i := 2; i <= applySamples; i++ {
		name := fmt.Sprintf("%s-%d", app, i)
		rev, _, err := commit(repo, fmt.Sprintf("%d objects, sample %d", n, i), merge(under("apps/src/"+name, objs), map[string]string{
			"apps/defs/" + name + ".yaml": appDef(name, repo.URL, "apps/src/"+name, name, toClusters(cl.Name()), true),
		}))
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := hub.PushWebhookAt(ctx, repo.URL, rev); err != nil {
			return err
		}
		at, err := waitApps(ctx, hub, 5*time.Minute, 20*time.Millisecond, syncedAt(name, rev, 1, nil))
		if err != nil {
			return fmt.Errorf("apply %d objects, sample %d: %w", n, i, err)
		}
		op, _ := syncLogged(agent.Proc, "app="+name+" ")
		totals, ops = append(totals, at.Sub(t0)), append(ops, op)
	}
	agent.Stop()
	agentTook, opTook = totals.pct(50), ops.pct(50)

	// kubectl on the same API server, one file per object.
	dir := filepath.Join(repo.Work, "apps/src", app)
	kv := kubectlVersion(ctx, b.cfg.Kubectl)
	csa, err := b.kubectlApply(ctx, cs, cl.Kubeconfig(), dir, "kubectl-csa", n)
	if err != nil {
		return err
	}
	ssa, err := b.kubectlApply(ctx, cs, cl.Kubeconfig(), dir, "kubectl-ssa", n, "--server-side")
	if err != nil {
		return err
	}
	b.set(rowApply, fmt.Sprintf("agent median %s of %d (%s; webhook → Synced; the agent's sync median %s); kubectl apply -f %s (%.0f×), --server-side %s (%.0f×)",
		secs(agentTook), len(totals), totals.list(), secs(opTook), secs(csa), csa.Seconds()/agentTook.Seconds(), secs(ssa), ssa.Seconds()/agentTook.Seconds()), agentTook < 4*time.Second)
	b.detail("Applying 1,000 objects", fmt.Sprintf(`One cluster (etcd + kube-apiserver). %d objects (ConfigMaps, Services and Deployments, 4:3:3), one
file each, in one app folder. Agent: one commit adding the app, then a webhook; the time runs to the hub
showing the app Synced (so it includes fetch, render, transfer and status). Three samples: the app, then
(after the re-apply and memory below) two more apps of the same objects in namespaces of their own:
%s, median %s; the agent's own operation (the took= of its "synced" log line): %s, median %s. Then, with the agent stopped, on the same API
server and in fresh namespaces, `+"`kubectl apply -f <folder>`"+`: %s, and `+"`kubectl apply --server-side -f <folder>`"+`:
%s (kubectl: %s).

Where the machine's CPU went during the first sample (webhook to Synced, /proc of each process): %s.

Re-apply: a `+"`flotilla app sync`"+` command makes the agent apply the unchanged bundle again (%s). The API
server's write requests (apiserver_request_total, every verb but GET, LIST and WATCH) grew by %d (%s), and %d of
the %d objects' resourceVersions changed. Not counted: writes to leases (%s), which are the API server's own
identity-lease heartbeats every 10 s (the agent uses no leases).

Agent memory with the %d objects under management (its watches included): VmRSS sampled every 250 ms for
10 s after the re-apply; at the end %s, peak %s.
`, n, totals.list(), secs(agentTook), ops.list(), secs(opTook), secs(csa), secs(ssa), kv, firstCPU, secs(reSync), writes, byRes, changed, len(rvBefore), others, n, mib(rss), mib(m.peakB)))
	return nil
}

// applySamples is how many times the 1,000-object apply is measured.
const applySamples = 3

// objectFiles returns n one-object files: ConfigMaps, Services and
// Deployments in the ratio 4:3:3.
func objectFiles(n int) map[string]string {
	out := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("obj-%04d", i)
		var y string
		switch i % 10 {
		case 0, 1, 2, 3:
			y = configMap(name, strconv.Itoa(i))
		case 4, 5, 6:
			y = webApp(name, 1, "")["service.yaml"]
		default:
			y = webApp(name, 1, "")["deployment.yaml"]
		}
		out[name+".yaml"] = y
	}
	return out
}

func countObjects(ctx context.Context, cs kubernetes.Interface, ns string) (int, error) {
	rvs, err := resourceVersions(ctx, cs, ns)
	return len(rvs), err
}

// resourceVersions returns kind/name → resourceVersion of the ConfigMaps
// (but the API server's kube-root-ca.crt), Services and Deployments in ns.
func resourceVersions(ctx context.Context, cs kubernetes.Interface, ns string) (map[string]string, error) {
	out := map[string]string{}
	opts := metav1.ListOptions{}
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, o := range cms.Items {
		if o.Name != "kube-root-ca.crt" {
			out["cm/"+o.Name] = o.ResourceVersion
		}
	}
	svcs, err := cs.CoreV1().Services(ns).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, o := range svcs.Items {
		out["svc/"+o.Name] = o.ResourceVersion
	}
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, o := range deps.Items {
		out["deploy/"+o.Name] = o.ResourceVersion
	}
	return out, nil
}

// diffWrites returns the growth of writes but to leases, its breakdown,
// and the lease writes (the API server's own heartbeats).
func diffWrites(before, after map[string]float64) (int, string, string) {
	total := 0
	var parts, leases []string
	for k, v := range after {
		d := int(v - before[k])
		if d <= 0 {
			continue
		}
		if strings.HasSuffix(k, " leases") {
			leases = append(leases, fmt.Sprintf("%s: %d", k, d))
			continue
		}
		total += d
		parts = append(parts, fmt.Sprintf("%s: %d", k, d))
	}
	sort.Strings(parts)
	sort.Strings(leases)
	join := func(p []string) string {
		if len(p) == 0 {
			return "none"
		}
		return strings.Join(p, ", ")
	}
	return total, join(parts), join(leases)
}

// kubectlApply applies every file of dir into a new namespace ns and
// returns how long kubectl ran.
func (b *Bench) kubectlApply(ctx context.Context, cs kubernetes.Interface, kubeconfig, dir, ns string, want int, extra ...string) (time.Duration, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	args := append([]string{"--kubeconfig", kubeconfig, "-n", ns, "apply", "-f", dir}, extra...)
	cmd := exec.CommandContext(ctx, b.cfg.Kubectl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	took := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	if lines := bytes.Count(out, []byte("\n")); lines < want {
		return 0, fmt.Errorf("kubectl %s printed %d lines, want %d", strings.Join(args, " "), lines, want)
	}
	if got, err := countObjects(ctx, cs, ns); err != nil || got != want {
		return 0, fmt.Errorf("namespace %s holds %d objects after kubectl, want %d (%v)", ns, got, want, err)
	}
	b.logf("kubectl apply %v into %s: %s", extra, ns, secs(took))
	return took, nil
}

func kubectlVersion(ctx context.Context, kubectl string) string {
	out, err := exec.CommandContext(ctx, kubectl, "version", "--client").Output()
	if err != nil {
		return kubectl + " (version unknown)"
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(first)
}

// syncLogged finds the agent's "synced:" log line containing marker and
// returns its took= value.
func syncLogged(p *harness.Proc, marker string) (time.Duration, bool) {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "synced:") || !strings.Contains(line, marker) {
			continue
		}
		_, took, ok := strings.Cut(line, " took=")
		if !ok {
			return 0, true
		}
		d, _ := time.ParseDuration(strings.Fields(took)[0])
		return d, true
	}
	return 0, false
}
