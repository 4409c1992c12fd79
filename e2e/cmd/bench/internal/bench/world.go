package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// world holds what one phase started, so that it can be stopped at the
// phase's end.
type world struct {
	b     *Bench
	name  string
	dir   string
	git   *gitserver.Server
	stops []func()
	// hubArgs are added to the hub's flags (after the defaults, so they
	// win).
	hubArgs []string
}

func (b *Bench) newWorld(name string) (*world, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	srv, err := gitserver.Start(filepath.Join(dir, "git"))
	if err != nil {
		return nil, err
	}
	w := &world{b: b, name: name, dir: dir, git: srv}
	w.stops = append(w.stops, func() { _ = srv.Close() })
	return w, nil
}

// close stops everything in reverse start order.
func (w *world) close() {
	for i := len(w.stops) - 1; i >= 0; i-- {
		w.stops[i]()
	}
	w.stops = nil
}

func (w *world) repo(name string) (*gitserver.Repo, error) {
	if err := os.MkdirAll(filepath.Join(w.dir, "git"), 0o755); err != nil {
		return nil, err
	}
	return w.git.NewRepo(name, filepath.Join(w.dir, "work-"+name))
}

// clusters starts process clusters (concurrently) named names.
func (w *world) clusters(ctx context.Context, full bool, names ...string) ([]*cluster.ProcessCluster, error) {
	prov := &cluster.ProcessProvider{BinDir: w.b.cfg.BinDir, WorkDir: filepath.Join(w.dir, "clusters"), Full: full, StartTimeout: 5 * time.Minute}
	out := make([]*cluster.ProcessCluster, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := prov.Create(ctx, n)
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = c.(*cluster.ProcessCluster)
		}()
	}
	wg.Wait()
	for i, c := range out {
		if c != nil {
			w.stops = append(w.stops, func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				_ = c.Stop(sctx)
			})
		}
		if errs[i] != nil {
			return nil, errs[i]
		}
	}
	return out, nil
}

// hub starts a hub whose Application definitions come from repo's
// apps/defs folder (app of apps), polling every poll.
func (w *world) hub(ctx context.Context, repo *gitserver.Repo, poll time.Duration) (*harness.Hub, error) {
	return w.hubIn(ctx, repo, poll, "hub")
}

// hubIn starts a hub as hub does, in the phase's folder name, with extra
// flags after w.hubArgs.
func (w *world) hubIn(ctx context.Context, repo *gitserver.Repo, poll time.Duration, name string, extra ...string) (*harness.Hub, error) {
	dir := filepath.Join(w.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	h, err := harness.StartHub(ctx, w.b.cfg.BinDir, dir, harness.HubOptions{PollInterval: poll, Extra: append([]string{
		"--apps-repo", repo.URL, "--apps-path", "apps/defs", "--apps-revision", "main",
		"--resync", "30s", "--log-level", "info",
		// Every simulated agent enrols and connects from this host's one
		// address.
		"--agent-enroll-rate", "10000", "--agent-enroll-burst", "10000",
		"--agent-max-unauthenticated-conns", "8192", "--agent-max-unauthenticated-conns-per-ip", "8192",
	}, slices.Concat(w.hubArgs, extra)...)})
	if err != nil {
		return nil, err
	}
	// Not h.Stop: that would bind the process of this start, and a
	// restarted hub runs another.
	w.stops = append(w.stops, func() { h.Stop() })
	return h, nil
}

// enroll registers cluster c with the hub through the CLI and starts its
// agent with the printed join data.
func (w *world) enroll(ctx context.Context, h *harness.Hub, c *cluster.ProcessCluster, labels ...string) (*harness.Agent, error) {
	j, err := h.AddCluster(ctx, c.Name(), labels...)
	if err != nil {
		return nil, err
	}
	a, err := harness.StartAgent(w.b.cfg.BinDir, w.dir, c.Kubeconfig(), j, "--log-level", "info")
	if err != nil {
		return nil, err
	}
	w.stops = append(w.stops, a.Stop)
	return a, nil
}

// commit writes files into repo and pushes; it returns the commit and the
// time the push finished.
func commit(repo *gitserver.Repo, msg string, files map[string]string) (string, time.Time, error) {
	m := make(map[string][]byte, len(files))
	for k, v := range files {
		m[k] = []byte(v)
	}
	if err := repo.Write(m); err != nil {
		return "", time.Time{}, err
	}
	rev, err := repo.CommitAndPush(msg)
	return rev, time.Now(), err
}

// listApps reads every app from the hub's API, page by page.
func listApps(ctx context.Context, h *harness.Hub) (map[string]api.AppView, error) {
	out := map[string]api.AppView{}
	after := ""
	for range 1000 {
		var page api.ListResponse[api.AppView]
		if err := h.DoJSON(ctx, "GET", "/api/v1/apps?limit=1000&after="+url.QueryEscape(after), nil, &page); err != nil {
			return nil, err
		}
		for _, a := range page.Items {
			out[a.Name] = a
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
	return nil, fmt.Errorf("app list: too many pages")
}

// waitApps polls the hub every interval until cond holds, and returns the
// time the satisfying answer arrived (an upper bound, within one poll).
func waitApps(ctx context.Context, h *harness.Hub, timeout, interval time.Duration, cond func(map[string]api.AppView) error) (time.Time, error) {
	var at time.Time
	err := harness.Eventually(ctx, timeout, interval, func() error {
		apps, err := listApps(ctx, h)
		if err != nil {
			return err
		}
		if err := cond(apps); err != nil {
			return err
		}
		at = time.Now()
		return nil
	})
	return at, err
}

// followApps waits as a user's tool does (flotilla app wait, the web UI):
// it follows the hub's event stream (GET /api/v1/events: one "change"
// event at once, then at most one per 100 ms while things change) and
// re-reads the app list on each event until cond holds, and returns the
// time the satisfying answer arrived. The list is also re-read every
// 5 s without an event, in case the stream broke.
func followApps(ctx context.Context, h *harness.Hub, timeout time.Duration, cond func(map[string]api.AppView) error) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", h.HTTPURL+"/api/v1/events", nil)
	if err != nil {
		return time.Time{}, err
	}
	req.Header.Set("Authorization", "Bearer "+h.Token)
	var tr http.RoundTripper
	if h.Client != nil {
		tr = h.Client.Transport
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("event stream: HTTP %d", resp.StatusCode)
	}
	events := make(chan struct{}, 1)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: change") {
				select {
				case events <- struct{}{}:
				default: // one pending is enough: each read is the whole list
				}
			}
		}
	}()
	fallback := time.NewTicker(5 * time.Second)
	defer fallback.Stop()
	last := fmt.Errorf("no event from the hub")
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("after %s: %w (last: %v)", timeout, ctx.Err(), last)
		case _, ok := <-events:
			if !ok {
				return time.Time{}, fmt.Errorf("the hub closed its event stream (last: %v)", last)
			}
		case <-fallback.C:
		}
		apps, err := listApps(ctx, h)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return time.Time{}, err
		}
		if last = cond(apps); last == nil {
			return time.Now(), nil
		}
	}
}

// digests returns cluster → desired digest of app.
func digests(apps map[string]api.AppView, app string) map[string]string {
	out := map[string]string{}
	for _, c := range apps[app].Clusters {
		out[c.Cluster] = c.Digest
	}
	return out
}

// syncedAt is a condition: app is at rev, targets exactly want clusters,
// and every target has a desired digest other than old's and is Synced.
func syncedAt(app, rev string, want int, old map[string]string) func(map[string]api.AppView) error {
	return func(apps map[string]api.AppView) error {
		a, ok := apps[app]
		if !ok {
			return fmt.Errorf("app %s not listed", app)
		}
		if a.Error != "" {
			return fmt.Errorf("app %s: %s", app, a.Error)
		}
		if a.Revision != rev {
			return fmt.Errorf("app %s at %s, want %s", app, short(a.Revision), short(rev))
		}
		if len(a.Clusters) != want {
			return fmt.Errorf("app %s targets %d clusters, want %d", app, len(a.Clusters), want)
		}
		n := 0
		var first string
		for _, c := range a.Clusters {
			if c.Digest != "" && c.Digest != old[c.Cluster] && c.Sync == "Synced" {
				n++
			} else if first == "" {
				first = fmt.Sprintf("%s: %s %s %s", c.Cluster, c.Sync, c.Error, c.Message)
			}
		}
		if n != want {
			return fmt.Errorf("app %s Synced on %d/%d clusters (%s)", app, n, want, first)
		}
		return nil
	}
}

func short(rev string) string {
	if len(rev) > 8 {
		return rev[:8]
	}
	return rev
}

// appDef is an Application definition for the apps/defs folder.
func appDef(name, repoURL, path, ns, destination string, selfHeal bool) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata:
  name: %s
spec:
  source:
    repoURL: %s
    targetRevision: main
    path: %s
  destination:
    namespace: %s
%s
  syncPolicy:
    automated: {prune: true, selfHeal: %t}
    syncOptions: [CreateNamespace=true]
`, name, repoURL, path, ns, destination, selfHeal)
}

// toClusters and toSelector are destination blocks for appDef.
func toClusters(names ...string) string { return "    clusters: [" + strings.Join(names, ", ") + "]" }

func toSelector(k, v string) string {
	return fmt.Sprintf("    clusterSelector: {matchLabels: {%s: %q}}", k, v)
}

// webApp is a small app: a Deployment, a Service and a ConfigMap whose data
// carries gen, so that every commit changes the bundle.
func webApp(name string, replicas int, gen string) map[string]string {
	return map[string]string{
		"deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels: {app: %[1]s}
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
`, name, replicas),
		"service.yaml": fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports:
  - port: 80
    targetPort: 80
`, name),
		"configmap.yaml": configMap(name+"-config", gen),
	}
}

func configMap(name, gen string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  generation: %q
`, name, gen)
}

// under prefixes every key of files with dir/.
func under(dir string, files map[string]string) map[string]string {
	out := make(map[string]string, len(files))
	for k, v := range files {
		out[dir+"/"+k] = v
	}
	return out
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
