package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// Rows of this round's capabilities (phases hooks and charts).
const (
	rowHooks      = "hooks"
	rowChartCold  = "chart-cold"
	rowChartWarm  = "chart-warm"
	hookGoal      = 3 * time.Second
	chartColdGoal = time.Second
	chartWarmGoal = 300 * time.Millisecond
)

func capRows() []*Row {
	return []*Row{
		{ID: rowHooks, Figure: "commit (webhook) → Synced and the operation Succeeded, app with a PreSync and a PostSync Job hook, 1 full cluster", Goal: "p50 < 3 s (ours: the two Jobs run one after the other on the cluster, about 1 s each with the Job controller's own batching, plus < 1 s of Flotilla's)", Argo: "—"},
		{ID: rowChartCold, Figure: "commit (webhook) → Synced, chart from an HTTP Helm repository, app moved to a new chart version (index, download, render: cold cache)", Goal: "p50 < 1 s (ours)", Argo: "—"},
		{ID: rowChartWarm, Figure: "commit (webhook) → Synced, chart from an HTTP Helm repository, values changed (chart cached: warm cache)", Goal: "p50 < 0.3 s (ours: DESIGN's first-table goal for commit → Synced)", Argo: "—"},
	}
}

// opDone is a condition: app's one target has a desired digest other
// than old, is Synced, its last operation Succeeded for that digest, and
// check (when set) accepts the app.
func opDone(app, old string, check func(api.AppView) error) func(map[string]api.AppView) error {
	return func(apps map[string]api.AppView) error {
		a, ok := apps[app]
		if !ok {
			return fmt.Errorf("app %s not listed", app)
		}
		if a.Error != "" {
			return fmt.Errorf("app %s: %s", app, a.Error)
		}
		if check != nil {
			if err := check(a); err != nil {
				return err
			}
		}
		if len(a.Clusters) != 1 {
			return fmt.Errorf("app %s targets %d clusters, want 1", app, len(a.Clusters))
		}
		c := a.Clusters[0]
		op := c.LastOperation
		switch {
		case c.Digest == "" || c.Digest == old:
			return fmt.Errorf("app %s: no new bundle yet", app)
		case c.Sync != "Synced":
			return fmt.Errorf("app %s: %s %s", app, c.Sync, c.Message)
		case op == nil || op.Digest != c.Digest || op.Phase != "Succeeded":
			return fmt.Errorf("app %s: operation not done for the new bundle (%+v)", app, op)
		}
		return nil
	}
}

// timedCommit commits files, sends the webhook, and returns the time until
// cond(old digest) holds for app.
func (b *Bench) timedCommit(ctx context.Context, hub *harness.Hub, repo *gitserver.Repo, app, msg string, files map[string]string, cond func(old string) func(map[string]api.AppView) error) (time.Duration, error) {
	apps, err := listApps(ctx, hub)
	if err != nil {
		return 0, err
	}
	var old string
	for _, d := range digests(apps, app) {
		old = d
	}
	rev, _, err := commit(repo, msg, files)
	if err != nil {
		return 0, err
	}
	t0, err := b.webhook(ctx, hub, repo.URL, rev)
	if err != nil {
		return 0, err
	}
	at, err := waitApps(ctx, hub, 2*time.Minute, 10*time.Millisecond, cond(old))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", msg, err)
	}
	return at.Sub(t0), nil
}

const hookJob = `apiVersion: batch/v1
kind: Job
metadata:
  generateName: %[2]s-
  annotations:
    argocd.argoproj.io/hook: %[1]s
    argocd.argoproj.io/hook-delete-policy: HookSucceeded
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: run
        image: registry.invalid/tools:1
`

// hooks measures commit → Synced (operation Succeeded) of an app with a
// PreSync and a PostSync Job hook against the same app without hooks, on
// one full cluster (Jobs run: kwok completes their pods).
func (b *Bench) hooks(ctx context.Context) error {
	w, err := b.newWorld("hooks")
	if err != nil {
		return err
	}
	defer w.close()
	src := func(app, gen string, hooked bool) map[string]string {
		files := under("apps/src/"+app, webApp(app, 1, gen))
		if hooked {
			files["apps/src/"+app+"/presync.yaml"] = fmt.Sprintf(hookJob, "PreSync", "presync")
			files["apps/src/"+app+"/postsync.yaml"] = fmt.Sprintf(hookJob, "PostSync", "postsync")
		}
		return files
	}
	s, err := w.startOneHub(ctx, oneHubSpec{full: true, clusters: []string{"hooks"}, label: "bench=hooks", first: func(repoURL string) map[string]string {
		return merge(src("plain", "0", false), src("hooked", "0", true), map[string]string{
			"apps/defs/plain.yaml":  appDef("plain", repoURL, "apps/src/plain", "plain", toSelector("bench", "hooks"), false),
			"apps/defs/hooked.yaml": appDef("hooked", repoURL, "apps/src/hooked", "hooked", toSelector("bench", "hooks"), false),
		})
	}})
	if err != nil {
		return err
	}
	for _, app := range []string{"plain", "hooked"} {
		if _, err := waitApps(ctx, s.hub, 3*time.Minute, 50*time.Millisecond, opDone(app, "", nil)); err != nil {
			return fmt.Errorf("hooks: first sync: %w", err)
		}
	}
	var plain, hooked samples
	for i := range b.cfg.HookCommits {
		gen := fmt.Sprintf("%d", i+1)
		for _, app := range []string{"plain", "hooked"} {
			d, err := b.timedCommit(ctx, s.hub, s.repo, app, fmt.Sprintf("%s change %d", app, i), map[string]string{
				"apps/src/" + app + "/configmap.yaml": configMap(app+"-config", gen),
			}, func(old string) func(map[string]api.AppView) error { return opDone(app, old, nil) })
			if err != nil {
				return err
			}
			if app == "plain" {
				plain = append(plain, d)
			} else {
				hooked = append(hooked, d)
			}
		}
	}
	b.set(rowHooks, fmt.Sprintf("with hooks p50 %s, p99 %s; the same app without hooks p50 %s, p99 %s (n=%d each)",
		secs(hooked.pct(50)), secs(hooked.pct(99)), secs(plain.pct(50)), secs(plain.pct(99)), len(hooked)), hooked.pct(50) < hookGoal)
	b.detail("Hooks", fmt.Sprintf(`A full cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok node, so that Jobs run and
complete). Two apps of the same objects (a Deployment, a Service and a ConfigMap): "hooked" also has a PreSync
and a PostSync Job hook (generateName, hook-delete-policy HookSucceeded), "plain" has none. Each sample: a
commit changing the app's ConfigMap and a webhook, until the hub shows the new bundle Synced and the agent's
operation for it Succeeded (for "hooked": the PreSync Job ran and completed, the objects were applied and
Healthy, the PostSync Job ran and completed). The apps alternate, one sample each per round.

- with hooks: %s
- without: %s
`, hooked.list(), plain.list()))
	return nil
}

// helmRepo is an HTTP Helm chart repository on loopback: charts packaged
// by Helm's chartutil, index.yaml by Helm's repo package.
type helmRepo struct {
	dir string
	url string
	srv *httptest.Server
}

func newHelmRepo(dir string) (*helmRepo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &helmRepo{dir: dir}
	r.srv = httptest.NewServer(http.StripPrefix("/charts/", http.FileServer(http.Dir(dir))))
	r.url = r.srv.URL + "/charts"
	return r, r.index()
}

func (r *helmRepo) index() error {
	idx, err := repo.IndexDirectory(r.dir, r.url)
	if err != nil {
		return err
	}
	idx.SortEntries()
	return idx.WriteFile(filepath.Join(r.dir, "index.yaml"), 0o644)
}

// add packages chart name at version (files relative to the chart) and
// regenerates the index.
func (r *helmRepo) add(work, name, version string, files map[string]string) error {
	src := filepath.Join(work, name+"-"+version, name)
	for p, body := range files {
		full := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			return err
		}
	}
	if err := chartutil.SaveChartfile(filepath.Join(src, "Chart.yaml"), &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version}); err != nil {
		return err
	}
	ch, err := loader.LoadDir(src)
	if err != nil {
		return err
	}
	if _, err := chartutil.Save(ch, r.dir); err != nil {
		return err
	}
	return r.index()
}

// chartAppDef is an app of chart web at version (exact) with values.
func chartAppDef(name, repoURL, ns, version, greeting string) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: %[1]s}
spec:
  source:
    repoURL: %[2]s
    chart: web
    targetRevision: %[4]s
    helm:
      values: |
        greeting: %[5]q
  destination:
    namespace: %[3]s
    clusterSelector: {matchLabels: {bench: charts}}
  syncPolicy:
    automated: {prune: true}
    syncOptions: [CreateNamespace=true]
`, name, repoURL, ns, version, greeting)
}

// charts measures commit → Synced of an app whose source is a chart from
// an HTTP Helm repository: moved to a new chart version each time (the hub
// resolves it in the index, downloads and renders it: cold) and
// with only the app's values changed (the chart is cached: warm).
func (b *Bench) charts(ctx context.Context) error {
	w, err := b.newWorld("charts")
	if err != nil {
		return err
	}
	defer w.close()
	hr, err := newHelmRepo(filepath.Join(w.dir, "helm-repo"))
	if err != nil {
		return err
	}
	defer hr.srv.Close()
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("templates/cm%d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-%d}\ndata: {greeting: {{ .Values.greeting | quote }}, version: {{ .Chart.Version | quote }}}\n", i)
	}
	work := filepath.Join(w.dir, "charts-src")
	if err := hr.add(work, "web", "1.0.0", files); err != nil {
		return err
	}
	const app = "chart"
	s, err := w.startOneHub(ctx, oneHubSpec{clusters: []string{"charts"}, label: "bench=charts", first: func(string) map[string]string {
		return map[string]string{"apps/defs/chart.yaml": chartAppDef(app, hr.url, app, "1.0.0", "g0")}
	}})
	if err != nil {
		return err
	}
	atVersion := func(v string) func(api.AppView) error {
		return func(a api.AppView) error {
			if !strings.HasPrefix(a.Revision, v+"@") {
				return fmt.Errorf("app %s at %s, want %s", app, a.Revision, v)
			}
			return nil
		}
	}
	if _, err := waitApps(ctx, s.hub, 3*time.Minute, 50*time.Millisecond, opDone(app, "", atVersion("1.0.0"))); err != nil {
		return fmt.Errorf("charts: first sync: %w", err)
	}
	var cold, warm samples
	for i := range b.cfg.ChartCommits {
		v := fmt.Sprintf("1.0.%d", i+1)
		if err := hr.add(work, "web", v, files); err != nil {
			return err
		}
		d, err := b.timedCommit(ctx, s.hub, s.repo, app, "chart: new version "+v, map[string]string{"apps/defs/chart.yaml": chartAppDef(app, hr.url, app, v, "cold-"+v)},
			func(old string) func(map[string]api.AppView) error { return opDone(app, old, atVersion(v)) })
		if err != nil {
			return err
		}
		cold = append(cold, d)
		d, err = b.timedCommit(ctx, s.hub, s.repo, app, "chart: values "+v, map[string]string{"apps/defs/chart.yaml": chartAppDef(app, hr.url, app, v, "warm-"+v)},
			func(old string) func(map[string]api.AppView) error { return opDone(app, old, atVersion(v)) })
		if err != nil {
			return err
		}
		warm = append(warm, d)
	}
	b.set(rowChartCold, fmt.Sprintf("p50 %s, p99 %s (n=%d)", secs(cold.pct(50)), secs(cold.pct(99)), len(cold)), cold.pct(50) < chartColdGoal)
	b.set(rowChartWarm, fmt.Sprintf("p50 %s, p99 %s (n=%d)", secs(warm.pct(50)), secs(warm.pct(99)), len(warm)), warm.pct(50) < chartWarmGoal)
	b.detail("Charts from a Helm repository", fmt.Sprintf(`One cluster (etcd + kube-apiserver), one agent, one hub. A Helm chart repository served over plain HTTP on
loopback (index.yaml made by Helm's repo package, charts packaged by Helm's chartutil; the hub runs with
--allow-insecure-http-repos): chart "web", 20 ConfigMap templates. The app (in the app-of-apps folder) takes
the chart at an exact version with inline values. Cold: a new chart version is published, then a commit moves
the app to it (targetRevision) and a webhook is sent; the sample ends when the hub shows the app at the new
version Synced and the agent's operation Succeeded (the hub resolves the version in the index, downloads the
new archive and renders it). Warm: a commit changing only the values (the archive is cached; a new render).

- cold (new version): %s
- warm (values only): %s
`, cold.list(), warm.list()))
	return nil
}
