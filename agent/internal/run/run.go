package run

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/capabilities"
	"github.com/flotilla-cd/flotilla/agent/internal/engine"
	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
	"github.com/flotilla-cd/flotilla/agent/internal/identity"
	"github.com/flotilla-cd/flotilla/agent/internal/kube"
	"github.com/flotilla-cd/flotilla/agent/internal/liveview"
	"github.com/flotilla-cd/flotilla/agent/internal/policy"
	"github.com/flotilla-cd/flotilla/shared/memtrim"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// Run starts the agent and runs until ctx ends.
func Run(ctx context.Context, o Options, log hclog.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "flotilla-agent/" + version.Version

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensureNamespace(ctx, dyn, o.Namespace); err != nil {
		return err
	}
	var ids identity.Store = identity.DirStore{Dir: o.IdentityDir}
	if o.IdentityDir == "" {
		ids = identity.SecretStore{Secrets: kube.NewSecrets(dyn, o.Namespace), Namespace: o.Namespace, Name: o.IdentitySecret}
	}

	// /metrics serves the agent's own registry (never the global one):
	// its metrics, the Go runtime's and the process's.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pol := policy.NewSet()
	self := policy.Self{Namespace: o.Namespace, Name: o.SelfName, PolicyConfigMap: o.PolicyConfigMap}
	if o.IdentityDir == "" {
		self.IdentitySecret = o.IdentitySecret
	}
	pol.Protect(self)
	if fp := o.flagPolicy(); !fp.Empty() {
		pol.Update(fp)
		log.Info("cluster policy", "source", "flags", "namespaces", fp.Namespaces, "allow_kinds", fp.AllowKinds, "deny_kinds", fp.DenyKinds, "cluster_scoped", !fp.NoClusterScoped)
	}
	if o.PolicyConfigMap != "" {
		// Read before anything is applied; followed until ctx ends.
		if err := policy.WatchConfigMap(ctx, dyn, o.Namespace, o.PolicyConfigMap, pol, log.Named("policy")); err != nil {
			return err
		}
	}
	eng, err := engine.New(cfg, engine.Options{
		Namespace: o.Namespace, Cluster: o.Cluster, Namespaces: o.WatchNamespaces, Registerer: reg, Policy: pol,
		OrphansEvery: o.OrphansInterval,
	}, log)
	if err != nil {
		return err
	}
	if len(o.WatchNamespaces) > 0 {
		log.Info("managing only some namespaces", "namespaces", strings.Join(o.WatchNamespaces, ","))
	}
	// The persisted bundles are enforced before, and without, the hub.
	if err := eng.Load(ctx); err != nil {
		return fmt.Errorf("load persisted state: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The parts run until ctx ends; the first to fail stops the others,
	// and its error is Run's.
	g, ctx := errgroup.WithContext(ctx)
	// An agent is idle most of the time after a sync: hand the memory of a
	// burst back to the OS instead of keeping it mapped for minutes.
	g.Go(func() error {
		memtrim.Run(ctx, memtrim.Options{}, log.Named("memtrim"))
		return nil
	})
	g.Go(func() error {
		if err := eng.Run(ctx); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		return nil
	})

	connected := prometheus.NewGauge(prometheus.GaugeOpts{Name: "flotilla_agent_connected", Help: "1 while the stream to the hub is open."})
	reg.MustRegister(connected)
	if o.MetricsListen != "" {
		lis, err := net.Listen("tcp", o.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		if o.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
		go func() { _ = srv.Serve(lis) }()
		log.Info("metrics listening", "addr", lis.Addr().String())
	}

	dc, err := apply.NewDiscoveryClient(cfg)
	if err != nil {
		return err
	}
	caps := capabilities.New(dc, dyn, 0, log.Named("capabilities"))
	podLogs, err := liveview.NewPodLogs(cfg)
	if err != nil {
		return err
	}
	mapper, err := apply.NewMapper(cfg)
	if err != nil {
		return err
	}
	lv := liveview.New(dyn, podLogs, mapper, eng, liveview.Options{
		MaxRequests: o.LiveMaxRequests, MaxLogs: o.LiveMaxLogs, LogBytesPerSecond: o.LiveLogBytesPerSecond,
	}, log.Named("live"))
	g.Go(func() error {
		caps.Run(ctx)
		return nil
	})

	g.Go(func() error {
		if err := ensureIdentity(ctx, o, ids, log); err != nil {
			return err
		}
		c := hubclient.New(hubclient.Options{
			HubAddr: o.Hub, ServerName: o.ServerName, Capabilities: caps, Live: lv,
			OnConnected: func(up bool) {
				if up {
					connected.Set(1)
				} else {
					connected.Set(0)
				}
			},
		}, ids, eng, log.Named("hub"))
		_ = c.Run(ctx) // runs until ctx ends, reconnecting on its own
		return nil
	})
	return g.Wait()
}

// ensureIdentity enrols when no identity is stored yet (or the stored one is
// for another cluster) and a join token is given. Enrolment is retried with
// backoff while the hub cannot be reached; a refused token ends the agent.
func ensureIdentity(ctx context.Context, o Options, ids identity.Store, log hclog.Logger) error {
	id, err := ids.Load(ctx)
	if err == nil && id.Cluster == o.Cluster {
		return nil
	}
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return err
	}
	if o.JoinToken == "" {
		if id != nil {
			return fmt.Errorf("cluster %s is not enrolled: the stored identity's certificate is for cluster %s; pass --join-token (from `flotilla cluster token %s`)", o.Cluster, id.Cluster, o.Cluster)
		}
		return fmt.Errorf("cluster %s is not enrolled: pass --join-token (from `flotilla cluster add %s`)", o.Cluster, o.Cluster)
	}
	var caPEM []byte
	if o.CAFile != "" {
		if caPEM, err = os.ReadFile(o.CAFile); err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
	}
	// Jittered exponential backoff from 500 ms to 30 s, for ever (a hub
	// that is down is waited for); refusals that retrying cannot fix end it.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 500*time.Millisecond, 30*time.Second, 0
	id, err = backoff.RetryNotifyWithData(func() (*identity.Identity, error) {
		id, err := identity.Enroll(ctx, identity.EnrollOptions{
			HubAddr: o.Hub, ServerName: o.ServerName, Cluster: o.Cluster, Token: o.JoinToken,
			CAHash: o.CAHash, CAPEM: caPEM, AgentVersion: version.Version,
		})
		if err != nil && permanent(err) {
			return nil, backoff.Permanent(err)
		}
		return id, err
	}, backoff.WithContext(bo, ctx), func(err error, wait time.Duration) {
		log.Warn("enrolment failed; retrying", "error", err, "retry_in", wait)
	})
	if err != nil {
		return err
	}
	if err := ids.Save(ctx, id); err != nil {
		return err
	}
	log.Info("enrolled", "cluster", o.Cluster)
	return nil
}

// ensureNamespace creates the agent's own namespace when it is missing (an
// agent started by hand on a fresh cluster); installed agents find it made
// by their manifests, and a Forbidden answer is left to the first real use.
func ensureNamespace(ctx context.Context, dyn dynamic.Interface, ns string) error {
	_, err := kube.GetNamespace(ctx, dyn, ns)
	if err == nil || apierrors.IsForbidden(err) {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	err = kube.CreateNamespace(ctx, dyn, ns, "flotilla-agent")
	if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	return cfg, nil
}
