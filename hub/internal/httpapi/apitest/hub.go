package apitest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	"github.com/flotilla-cd/flotilla/hub/internal/status"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// Hub is a running API over real parts.
type Hub struct {
	Dir        string
	Repo       *Repo
	Store      *store.Bolt
	Fleet      *fleet.Fleet
	Controller *controller.Controller
	Status     *status.Service
	API        *httpapi.API
	// Live is the live-view broker the API uses; each SimAgent answers
	// its requests.
	Live   *liveview.Broker
	Server *httptest.Server
	// AdminToken and ReadOnlyToken are raw bearer tokens.
	AdminToken, ReadOnlyToken string
	ctx                       context.Context
	appsDir                   string
	// rolloutSink is Status once it exists (rollout events before then
	// are not recorded).
	rolloutSink atomic.Pointer[status.Service]
}

// Options shape the fixture.
type Options struct {
	// UI is served at / when set.
	UI http.Handler
	// Metrics is served at /metrics when set.
	Metrics http.Handler
	// WebhookSecret, when set, is the secret webhooks must be signed with.
	WebhookSecret string
	// AllowUnsignedWebhooks accepts unsigned webhooks when WebhookSecret is
	// empty (else they are refused).
	AllowUnsignedWebhooks bool
	// Files, when set, are committed after the fixture's two commits,
	// before the hub starts.
	Files map[string]string
	// Live are the hub's live-view limits (zero: the defaults).
	Live liveview.Limits
	// Apps are more app definitions (file name → YAML) in the apps
	// folder; "{{repo}}" is replaced by the fixture repo's URL and
	// "{{commit0}}" by its first commit.
	Apps map[string]string
}

// Clusters registered by New, with their labels.
var Clusters = map[string]map[string]string{
	"prod-eu-1": {"env": "prod", "region": "eu"},
	"prod-us-1": {"env": "prod", "region": "us"},
	"staging-1": {"env": "staging", "region": "eu"},
}

// New builds the fixture: the repo has two commits of two apps, guestbook
// (automated, on env=prod) and billing (manual sync, on every cluster).
// The first desired state is computed before New returns; the controller
// then runs until the test ends.
func New(t testing.TB, o Options) *Hub {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{Dir: dir, ctx: ctx}
	log := hclog.NewNullLogger()

	h.Repo = NewRepo(t, filepath.Join(dir, "repo"))
	h.Repo.Commit(t, "guestbook and billing", map[string]string{
		"guestbook/config.yaml":  configMap("guestbook-config", "blue"),
		"guestbook/service.yaml": service("guestbook-ui", 80),
		"billing/config.yaml":    configMap("billing-config", "v1"),
	})
	h.Repo.Commit(t, "guestbook: green", map[string]string{
		"guestbook/config.yaml": configMap("guestbook-config", "green"),
	})
	if len(o.Files) > 0 {
		h.Repo.Commit(t, "more files", o.Files)
	}
	appsDir := filepath.Join(dir, "apps")
	h.Repo.serve(t)
	writeFile(t, filepath.Join(appsDir, "guestbook.yaml"), fmt.Sprintf(guestbookApp, h.Repo.URL))
	writeFile(t, filepath.Join(appsDir, "billing.yaml"), fmt.Sprintf(billingApp, h.Repo.URL))
	h.appsDir = appsDir
	for name, y := range o.Apps {
		h.WriteApp(t, name, y)
	}

	st, err := store.Open(filepath.Join(dir, "hub.db"), log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	h.Store = st
	for name, labels := range Clusters {
		if err := st.CreateCluster(ctx, store.Cluster{Name: name, Labels: labels, CreatedAt: Epoch}); err != nil {
			t.Fatal(err)
		}
	}
	if h.AdminToken, _, err = st.CreateAPIToken(ctx, "admin", store.RoleAdmin, Epoch); err != nil {
		t.Fatal(err)
	}
	if h.ReadOnlyToken, _, err = st.CreateAPIToken(ctx, "viewer", store.RoleReadOnly, Epoch); err != nil {
		t.Fatal(err)
	}

	h.Fleet = fleet.New()
	// The fixture's apps are plain YAML: a Renderer without engines, so
	// that the API's and the CLI's tests link neither Helm nor Kustomize.
	git := gitsource.New(gitsource.Options{Dir: filepath.Join(dir, "git"), PollInterval: time.Hour, AllowInsecureHTTP: true}, log)
	h.Controller = controller.New(controller.Options{AppsDir: appsDir, Resync: time.Hour, OnRolloutEvent: func(ctx context.Context, e rollout.Event) {
		if s := h.rolloutSink.Load(); s != nil {
			s.RolloutEvent(ctx, e)
		}
	}}, git, render.New(render.Options{}), h.Fleet, st, log)
	snap := h.Controller.ReconcileNow(ctx)
	for _, a := range snap.Apps {
		if a.Error != "" {
			t.Fatalf("fixture app %s: %s", a.Name, a.Error)
		}
		for _, tg := range a.Targets {
			if tg.Error != "" {
				t.Fatalf("fixture app %s on %s: %s", a.Name, tg.Cluster, tg.Error)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.Controller.Run(ctx)
	}()

	h.Status = status.New(status.Deps{Store: st, Fleet: h.Fleet, Controller: h.Controller, CommandTimeout: 10 * time.Second, Log: log})
	h.rolloutSink.Store(h.Status)
	h.Live = liveview.New(o.Live)
	h.API = httpapi.New(httpapi.Deps{
		Live:  h.Live,
		Store: st, Fleet: h.Fleet, Controller: h.Controller, Git: git,
		JoinInfo:              func() (string, string) { return "hub.example:8443", "sha256:cafe" },
		TokenTTL:              time.Hour,
		Status:                h.Status,
		UI:                    o.UI,
		Metrics:               o.Metrics,
		WebhookSecret:         []byte(o.WebhookSecret),
		AllowUnsignedWebhooks: o.AllowUnsignedWebhooks,
		Log:                   log,
	})
	h.Server = httptest.NewServer(h.API)
	t.Cleanup(func() {
		h.Server.CloseClientConnections()
		h.Server.Close()
		cancel()
		<-done
		_ = st.Close()
	})
	return h
}

// WriteApp writes (or rewrites) an app definition in the apps folder
// ("{{repo}}" and "{{commit0}}" replaced as in Options.Apps); the next
// reconcile (POST /api/v1/refresh) reads it.
func (h *Hub) WriteApp(t testing.TB, file, yaml string) {
	t.Helper()
	r := strings.NewReplacer("{{repo}}", h.Repo.URL, "{{commit0}}", h.Repo.Commits[0])
	writeFile(t, filepath.Join(h.appsDir, file), r.Replace(yaml))
}

// Scrub replaces the fixture's temp dir in s, so output can be compared
// with golden files.
func (h *Hub) Scrub(s string) string {
	s = strings.ReplaceAll(s, h.Repo.URL, "$REPO")
	s = strings.ReplaceAll(s, h.Repo.Dir, "$REPO")
	return strings.ReplaceAll(s, h.Dir, "$DIR")
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func configMap(name, color string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  color: %s\n", name, color)
}

func service(name string, port int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  ports:\n  - port: %d\n  selector:\n    app: %s\n", name, port, name)
}

const guestbookApp = `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: guestbook}
spec:
  source: {repoURL: %s, targetRevision: main, path: guestbook}
  destination:
    namespace: guestbook
    clusterSelector: {matchLabels: {env: prod}}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
`

const billingApp = `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: billing}
spec:
  source: {repoURL: %s, targetRevision: main, path: billing}
  destination:
    namespace: billing
    clusterSelector: {matchLabels: {}}
`

// RolloutApp is an app with a progressive rollout over the prod clusters,
// prod-eu-1 first, then prod-us-1 after an approval, at the fixture's
// first commit (see Options.Apps); RolloutAppAtMain is the same app
// following main, which starts a rollout.
const (
	RolloutApp = `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source: {repoURL: "{{repo}}", targetRevision: "{{commit0}}", path: guestbook}
  destination:
    namespace: web
    clusterSelector: {matchLabels: {env: prod}}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
  rollout:
    autoRollback: true
    steps:
    - {name: eu, clusterSelector: {matchLabels: {region: eu}}}
    - {name: us, clusterSelector: {matchLabels: {region: us}}, approval: true}
`
)

// RolloutAppAtMain is RolloutApp following main.
var RolloutAppAtMain = strings.Replace(RolloutApp, `"{{commit0}}"`, "main", 1)
