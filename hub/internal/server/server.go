package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/auth"
	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartproc"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/ha"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/hub/internal/rollout"
	"github.com/flotilla-cd/flotilla/hub/internal/status"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/store/kubestore"
	"github.com/flotilla-cd/flotilla/hub/internal/webui"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/memtrim"
)

// AdminTokenFile is where the first admin token is written (mode 0600) in
// the state dir, once, on the first start.
const AdminTokenFile = "admin-token"

// Run starts the hub and serves until ctx ends.
func Run(ctx context.Context, o Options, log hclog.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	st, ca, kubeCfg, err := openConfiguredStore(ctx, o, log)
	if err != nil {
		return err
	}
	defer st.Close()
	bootstrap, err := ensureAdminToken(ctx, st, o.StateDir, log)
	if err != nil {
		return err
	}

	agentLis, err := net.Listen("tcp", o.AgentListen)
	if err != nil {
		return fmt.Errorf("agent listener: %w", err)
	}
	httpLis, err := net.Listen("tcp", o.HTTPListen)
	if err != nil {
		agentLis.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	advertise := o.AdvertiseAddr
	if advertise == "" {
		advertise = defaultAdvertise(agentLis.Addr().(*net.TCPAddr))
	}
	serving, err := ca.ServingCert(servingHosts(o, advertise), time.Now())
	if err != nil {
		return err
	}

	fl := fleet.New()
	restoreStatus(ctx, st, fl, log)
	var ctrl *controller.Controller
	m := newMetrics(fl, func() *controller.Controller { return ctrl })

	gitOpts, err := o.Git.gitsource()
	if err != nil {
		return err
	}
	gitOpts.Dir = filepath.Join(o.StateDir, "git")
	gitOpts.PollInterval = o.PollInterval
	gitOpts.OnPoll = func(_ string, d time.Duration, err error) {
		res := "ok"
		if err != nil {
			res = "error"
		}
		m.gitPoll.WithLabelValues(res).Observe(d.Seconds())
	}
	git := gitsource.New(gitOpts, log.Named("git"))
	// The chart workers read the CA bundle per request; a bad one stops
	// the hub here, as chartsource.New did when it ran in the hub.
	if ca := git.CABundle(); len(ca) > 0 && !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return errors.New("chart repositories: the CA bundle holds no certificate")
	}
	bin, err := renderBinary(o)
	if err != nil {
		return err
	}
	workers, err := startRenderWorkers(ctx, o, bin, log.Named("render"))
	if err != nil {
		return err
	}
	defer workers.Close()
	// Charts from Helm repositories are fetched by chart workers, with
	// the git credentials file (https prefixes), CA file and http policy.
	chartPool := chartWorkers(o, bin, gitOpts.FetchTimeout, log.Named("charts"))
	defer chartPool.Close()
	charts := chartproc.NewClient(chartPool, chartproc.Config{
		Dir: chartsDir(o), Timeout: gitOpts.FetchTimeout,
		CABundle: git.CABundle(), AllowInsecureHTTP: gitOpts.AllowInsecureHTTP,
	}, git.BasicAuth, "git-fetch-timeout")
	renderer := render.New(render.Options{Workers: workers, Engines: render.WorkerEngines(workers)})
	_, isKube := st.(*kubestore.Store)
	var ops *status.Service // rollout events before it exists are not recorded (none: the controller runs later)
	ctrl = controller.New(controller.Options{
		AppsDir: o.AppsDir, AppsRepo: o.AppsRepo, AppsPath: o.AppsPath, AppsRevision: o.AppsRevision, Resync: o.Resync,
		// A job is one checkout and one render; the render itself is
		// killed at --render-timeout, the job given up at twice that.
		RenderTimeout: 2 * o.Render.Timeout,
		Charts:        charts, ChartPoll: o.PollInterval, KustomizeHelm: o.KustomizeEnableHelm,
		KustomizeRemoteBases: o.KustomizeRemoteBases,
		ProjectsOff:          !o.EnforceProjects,
		OnReconcile: func(d time.Duration, renders int, _ error) {
			m.reconcile.Observe(d.Seconds())
			m.renders.Add(float64(renders))
		},
		// Another replica decides rollouts until this one holds the Lease.
		FollowRollouts: isKube,
		OnRolloutEvent: func(ctx context.Context, e rollout.Event) {
			if !e.Remote { // counted by the replica that made it
				m.rolloutEvents.WithLabelValues(e.Type).Inc()
			}
			if ops != nil {
				ops.RolloutEvent(ctx, e)
			}
		},
	}, git, renderer, fl, st, log.Named("controller"))

	if !o.EnforceProjects {
		log.Warn("project enforcement is off (--enforce-projects=false): apps are not held to their projects' rules; use this for tests and migration only")
	}
	ops = status.New(status.Deps{Store: st, Fleet: fl, Controller: ctrl, Log: log.Named("status")})
	limits := fitOpenFiles(o.agentLimits(), log)
	if o.RestoreMode {
		log.Warn("restore mode: agents' certificates issued after the store's backup are adopted; restart without --restore-mode once every agent reconnected")
	}
	live := liveview.New(o.Live)
	// With the kubernetes store this hub is one replica of several.
	var replica *ha.Replica
	replicaReady := func() error {
		if replica == nil {
			return nil
		}
		return replica.Ready()
	}
	agents := agentapi.New(ca, st, fl, agentapi.Options{CertTTL: o.CertTTL, Limits: limits, RestoreMode: o.RestoreMode, Live: live, Ready: replicaReady, SharedStore: isKube, Hooks: agentapi.Hooks{
		CommandResult: ops.Deliver,
		Capabilities: func(ctx context.Context, cluster string, c *apiv1alpha1.ClusterCapabilities) {
			if err := ctrl.SetCapabilities(ctx, cluster, c.GetKubeVersion(), c.GetApiVersions()); err != nil {
				log.Warn("cluster capabilities", "cluster", cluster, "error", err)
			}
		},
		Sent: func(_ string, ds *apiv1alpha1.DesiredState) {
			m.pushes.Add(float64(len(ds.GetBundles())))
		},
		Status: func(cluster string, prev, cur *apiv1alpha1.AppStatus) {
			m.statusCount.Inc()
			ops.Observe(ctx, cluster, prev, cur) // records the history of finished operations
		},
	}}, log.Named("agents"))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flotilla_hub_status_writes_pending",
		Help: "Agents' statuses received and not stored yet: queued, being written, or waiting for a retry (the store does not answer).",
	}, func() float64 { return float64(agents.PendingStatusWrites()) }))
	gs := agents.Endpoint(agentapi.TLSConfig(ca, serving))
	var refreshed func(string)
	if k, ok := st.(*kubestore.Store); ok {
		replica, err = ha.New(o.HA, ha.Deps{Config: kubeCfg, Store: k, Fleet: fl, Controller: ctrl, Git: git, Agents: agents, Log: log.Named("replica")})
		if err != nil {
			return err
		}
		refreshed = replica.Announce
		log.Info("replica of a shared store: active/active", "identity", replica.Identity(), "namespace", k.Namespace())
	}

	var secret []byte
	if o.WebhookSecretFile != "" {
		b, err := os.ReadFile(o.WebhookSecretFile)
		if err != nil {
			return fmt.Errorf("webhook secret: %w", err)
		}
		secret = []byte(strings.TrimSpace(string(b)))
	} else if o.AllowUnsignedWebhooks {
		log.Warn("webhooks are accepted WITHOUT a signature (--allow-unsigned-webhooks): anyone who reaches the hub can make it poll a repository; set --webhook-secret-file")
	} else {
		log.Info("webhooks are off until a secret is set (--webhook-secret-file)")
	}
	var sso *auth.SSO
	if o.Auth.Enabled() {
		if sso, err = auth.New(o.Auth, st, log.Named("sso")); err != nil {
			return fmt.Errorf("single sign-on: %w", err)
		}
		log.Info("single sign-on on", "issuer", o.Auth.Issuer, "hub_url", o.Auth.HubURL, "cli_client", o.Auth.CLIClientID != "")
	}
	api := httpapi.New(httpapi.Deps{
		Store: st, Fleet: fl, Controller: ctrl, Git: git,
		JoinInfo:              func() (string, string) { return advertise, ca.Hash() },
		TokenTTL:              o.TokenTTL,
		TokenUsed:             bootstrap.used,
		WebhookSecret:         secret,
		AllowUnsignedWebhooks: o.AllowUnsignedWebhooks,
		Metrics:               promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}),
		Status:                ops,
		Live:                  live,
		UI:                    webui.Handler(),
		SSO:                   sso,
		APITokenTTL:           o.APITokenTTL,
		APITokenMaxTTL:        o.APITokenMaxTTL,
		Ready: func() error {
			// The first reconcile never waits for git or renders: a repo
			// that does not answer keeps only its own apps waiting.
			if ctrl.Snapshot().At.IsZero() {
				return errors.New("first reconcile not done")
			}
			return replicaReady()
		},
		Refreshed: refreshed,
		Log:       log.Named("http"),
	})
	httpSrv := httpapi.NewServer(api)
	if o.HTTPTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.HTTPTLSCertFile, o.HTTPTLSKeyFile)
		if err != nil {
			return fmt.Errorf("--http-tls-cert-file %s, --http-tls-key-file %s: %w", o.HTTPTLSCertFile, o.HTTPTLSKeyFile, err)
		}
		httpSrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	log.Info("hub started", "agent_addr", agentLis.Addr().String(), "http_addr", httpLis.Addr().String(), "https", o.HTTPTLSCertFile != "",
		"advertise", advertise, "ca_hash", ca.Hash(), "state_dir", o.StateDir)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := serveDebug(ctx, o.DebugListen, log); err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}
	// The parts run until ctx ends; the first to fail stops the others,
	// and its error is Run's.
	g, ctx := errgroup.WithContext(ctx)
	run := func(name string, f func() error) {
		g.Go(func() error {
			if err := f(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	run("git", func() error { return git.Run(ctx) })
	run("controller", func() error { return ctrl.Run(ctx) })
	run("agent endpoint", func() error { return agentapi.Serve(ctx, gs, agentLis) })
	run("status writer", func() error { return agents.Run(ctx) })
	if replica != nil {
		run("replica", func() error { return replica.Run(ctx) })
	}
	// Renders and fan-outs come in bursts; hand their memory back to the
	// OS afterwards.
	run("memory trimmer", func() error {
		memtrim.Run(ctx, memtrim.Options{}, log.Named("memtrim"))
		return nil
	})
	run("http", func() error {
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer c()
			_ = httpSrv.Shutdown(sctx)
		}()
		serve := func() error { return httpSrv.Serve(httpLis) }
		if httpSrv.TLSConfig != nil {
			serve = func() error { return httpSrv.ServeTLS(httpLis, "", "") }
		}
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	err = g.Wait()
	ops.Wait() // history writes in flight, before the store closes
	log.Info("hub stopped")
	return err
}

// bootstrapToken is the first admin token while its file is still in the
// state dir: the file is removed the first time the token is used, so that
// the token does not stay readable on disk for ever.
type bootstrapToken struct {
	path, raw string
	log       hclog.Logger
	once      sync.Once
}

// used removes the token's file when raw is the bootstrap token.
func (b *bootstrapToken) used(raw string) {
	if b == nil || raw != b.raw {
		return
	}
	b.once.Do(func() {
		if err := os.Remove(b.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.log.Warn("remove the admin token file after its first use", "file", b.path, "error", err)
			return
		}
		b.log.Info("the admin token was used; its file was removed (keep the token elsewhere)", "file", b.path)
	})
}

// ensureAdminToken creates the first admin token on the first start and
// shows it once, in the state dir's admin-token file, until it is first
// used. It returns the token while its file exists (nil otherwise).
func ensureAdminToken(ctx context.Context, st store.Store, dir string, log hclog.Logger) (*bootstrapToken, error) {
	p := filepath.Join(dir, AdminTokenFile)
	toks, _, err := st.ListAPITokens(ctx, store.Page{Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(toks) > 0 {
		// A later start before the first use: the file is still there.
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil
		}
		return &bootstrapToken{path: p, raw: strings.TrimSpace(string(b)), log: log}, nil
	}
	raw, _, err := st.CreateAPIToken(ctx, "admin", store.RoleAdmin, time.Now())
	if errors.Is(err, store.ErrConflict) {
		// Another hub sharing the store made it at the same moment.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, []byte(raw+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write admin token: %w", err)
	}
	log.Info("created the admin API token; its file is removed at its first use", "file", p)
	if k, ok := st.(*kubestore.Store); ok {
		if err := k.PutInitialAdminToken(ctx, raw); err != nil {
			return nil, err
		}
		log.Info("the admin API token is also in a Secret: read it once, then delete the Secret", "secret", k.Namespace()+"/"+kubestore.InitialAdminSecret)
	}
	return &bootstrapToken{path: p, raw: raw, log: log}, nil
}

func restoreStatus(ctx context.Context, st store.Store, fl *fleet.Fleet, log hclog.Logger) {
	recs, err := st.ListStatus(ctx, "")
	if err != nil {
		log.Warn("restore status", "error", err)
		return
	}
	byCluster := map[string][]*apiv1alpha1.AppStatus{}
	for _, r := range recs {
		byCluster[r.Cluster] = append(byCluster[r.Cluster], r.Status)
	}
	for c, sts := range byCluster {
		fl.Restore(c, sts)
	}
}

func defaultAdvertise(a *net.TCPAddr) string {
	if a.IP == nil || a.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(a.Port))
	}
	return a.String()
}

func servingHosts(o Options, advertise string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1", "flotilla-hub", "flotilla-hub.flotilla-system", "flotilla-hub.flotilla-system.svc"}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(advertise); err == nil {
		hosts = append(hosts, h)
	}
	return append(hosts, o.TLSSANs...)
}
