package server

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/time/rate"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/auth"
	"github.com/flotilla-cd/flotilla/hub/internal/ha"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// agentLimits returns the agent port's limits with the enrolment rate.
func (o *Options) agentLimits() agentapi.Limits {
	l := o.AgentLimits
	if o.EnrollPerSecond > 0 {
		l.EnrollRate = rate.Limit(o.EnrollPerSecond)
	}
	return l
}

// caKeyFile returns where the CA key is.
func (o *Options) caKeyFile() string {
	if o.CAKeyFile != "" {
		return o.CAKeyFile
	}
	return filepath.Join(o.StateDir, "ca.key")
}

// Options configure the hub. Every flag can also be set from FLOTILLA_<FLAG>.
type Options struct {
	StateDir    string
	AgentListen string
	HTTPListen  string
	// HTTPTLSCertFile and HTTPTLSKeyFile, when set, make the HTTP API and
	// UI serve HTTPS with that certificate (PEM) instead of plain HTTP.
	HTTPTLSCertFile string
	HTTPTLSKeyFile  string
	AdvertiseAddr   string
	TLSSANs         []string

	AppsDir      string
	AppsRepo     string
	AppsPath     string
	AppsRevision string

	PollInterval time.Duration
	Resync       time.Duration
	// KustomizeEnableHelm inflates kustomizations' helmCharts with the
	// hub's Helm code (Argo CD's kustomize --enable-helm); off, they are
	// an error on the app.
	KustomizeEnableHelm bool
	// KustomizeRemoteBases fetches kustomizations' remote bases (git
	// repositories) through the hub's git mirrors and credentials; off,
	// they are an error on the app.
	KustomizeRemoteBases bool
	// EnforceProjects holds apps to their projects' rules (default on).
	// Off is for tests and migration only: every app is then treated as
	// in an allow-all project; agents' own policies still apply.
	EnforceProjects bool

	// Git: credentials, schemes, deadlines and size limits of git access.
	Git               GitOptions
	WebhookSecretFile string
	// AllowUnsignedWebhooks accepts webhooks without a signature when no
	// WebhookSecretFile is set; default off (they are refused).
	AllowUnsignedWebhooks bool

	CertTTL  time.Duration
	TokenTTL time.Duration
	// CAKeyFile holds the CA's private key; default ca.key in StateDir.
	CAKeyFile string
	// RotateCA makes a new CA when the key at CAKeyFile is missing or not
	// the stored CA's, instead of refusing to start.
	RotateCA bool
	// RestoreMode adopts agents' certificates newer than the store names
	// (after restoring the store from a backup); see agentapi.Options.
	RestoreMode bool
	// AgentLimits bound the agent port.
	AgentLimits agentapi.Limits
	// EnrollPerSecond is AgentLimits.EnrollRate as a number.
	EnrollPerSecond float64
	LogLevel        string
	LogJSON         bool
	// DebugListen serves Go's pprof handlers; empty disables.
	DebugListen string

	// GCPercent is the Go garbage collection target (as GOGC); 0 leaves
	// the runtime's. The GOGC environment variable wins.
	GCPercent int
	// MemoryLimit is the Go runtime's soft memory limit (a quantity such
	// as 900Mi or 2Gi); empty: 90 % of the container's memory limit, none
	// outside a container. The GOMEMLIMIT environment variable wins.
	MemoryLimit string

	// Live bounds live view (resource trees, logs, actions over the
	// agents' streams).
	Live liveview.Limits

	// Store selects the state store (bbolt or kubernetes).
	Store StoreOptions
	// HA tunes the replicas sharing a kubernetes store.
	HA ha.Options

	// Render limits and confines Helm and Kustomize renders (worker
	// processes); its ReadDirs and Command are set by Run.
	Render renderproc.Options
	// RenderWorkerBinary is the flotilla-render binary the render and
	// chart workers run (default: flotilla-render next to the hub's
	// executable).
	RenderWorkerBinary string

	// Auth configures single sign-on and the mapping of the provider's
	// groups to roles.
	Auth auth.Options
	// APITokenTTL is the lifetime of an API token made without --ttl;
	// APITokenMaxTTL the longest one may ask for.
	APITokenTTL    time.Duration
	APITokenMaxTTL time.Duration
}

// DefaultOptions returns the defaults, in one place.
func DefaultOptions() Options {
	return Options{
		StateDir:        "/var/lib/flotilla",
		AgentListen:     ":8443",
		HTTPListen:      ":8080",
		AppsRevision:    "HEAD",
		PollInterval:    30 * time.Second,
		Resync:          30 * time.Second,
		EnforceProjects: true,
		CertTTL:         24 * time.Hour,
		TokenTTL:        24 * time.Hour,
		LogLevel:        "info",
		GCPercent:       DefaultGCPercent,
		Git:             DefaultGitOptions(),
		Render:          renderproc.DefaultOptions(),
		AgentLimits:     agentapi.DefaultLimits(),
		Auth:            auth.DefaultOptions(),
		Live:            liveview.DefaultLimits(),
		Store:           StoreOptions{Kind: StoreBolt},
		HA:              ha.DefaultOptions(),

		APITokenTTL:    30 * 24 * time.Hour,
		APITokenMaxTTL: 365 * 24 * time.Hour,
	}
}

// BindFlags registers the options on fs.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "folder for the state store, CA and git mirrors")
	fs.StringVar(&o.AgentListen, "agent-listen", o.AgentListen, "address of the agent gRPC endpoint (mTLS)")
	fs.StringVar(&o.HTTPListen, "http-listen", o.HTTPListen, "address of the HTTP API, UI, webhooks and metrics")
	fs.StringVar(&o.HTTPTLSCertFile, "http-tls-cert-file", o.HTTPTLSCertFile, "serve --http-listen over HTTPS with this certificate chain (PEM; with --http-tls-key-file); default plain HTTP, for a TLS-terminating ingress in front")
	fs.StringVar(&o.HTTPTLSKeyFile, "http-tls-key-file", o.HTTPTLSKeyFile, "private key (PEM) of --http-tls-cert-file")
	fs.StringVar(&o.AdvertiseAddr, "advertise-addr", o.AdvertiseAddr, "host:port agents dial, printed in join commands (default: the agent listen address)")
	fs.StringSliceVar(&o.TLSSANs, "tls-san", o.TLSSANs, "extra DNS names or IPs for the hub's serving certificate")
	fs.StringVar(&o.AppsDir, "apps-dir", o.AppsDir, "local folder of Application definitions")
	fs.StringVar(&o.AppsRepo, "apps-repo", o.AppsRepo, "git repository of Application definitions (app of apps)")
	fs.StringVar(&o.AppsPath, "apps-path", o.AppsPath, "folder within --apps-repo")
	fs.StringVar(&o.AppsRevision, "apps-revision", o.AppsRevision, "branch, tag or commit of --apps-repo")
	fs.DurationVar(&o.PollInterval, "poll-interval", o.PollInterval, "how often each repo's refs are listed (plus up to 10% jitter)")
	fs.DurationVar(&o.Resync, "resync", o.Resync, "how often everything is re-evaluated without a git change")
	fs.BoolVar(&o.KustomizeEnableHelm, "kustomize-enable-helm", o.KustomizeEnableHelm, "inflate the helmCharts of kustomizations (with the hub's Helm code, charts from repositories through the chart cache and git credentials), as Argo CD's --enable-helm")
	fs.BoolVar(&o.KustomizeRemoteBases, "kustomize-remote-bases", o.KustomizeRemoteBases, "fetch the remote bases of kustomizations (git repositories in resources, bases and components) through the hub's git mirrors, credential templates and limits; a repo writer can then make the hub fetch any repository its credentials reach")
	fs.BoolVar(&o.EnforceProjects, "enforce-projects", o.EnforceProjects, "hold apps to their projects' rules (source repos, destinations, kinds, sync windows); --enforce-projects=false is for tests and migration only: every app may then deploy anything anywhere the agents allow")
	o.Git.BindFlags(fs)
	fs.StringVar(&o.WebhookSecretFile, "webhook-secret-file", o.WebhookSecretFile, "file holding the shared secret of git webhooks (without it webhooks are refused)")
	fs.BoolVar(&o.AllowUnsignedWebhooks, "allow-unsigned-webhooks", o.AllowUnsignedWebhooks, "accept webhooks without a signature when no webhook secret is set (anyone who reaches the hub can then trigger repository polls)")
	fs.DurationVar(&o.CertTTL, "cert-ttl", o.CertTTL, "lifetime of agent client certificates (renewed at 2/3)")
	fs.DurationVar(&o.TokenTTL, "join-token-ttl", o.TokenTTL, "lifetime of join tokens")
	fs.StringVar(&o.CAKeyFile, "ca-key-file", o.CAKeyFile, "file holding the hub CA's private key, readable by the hub only (default: ca.key in --state-dir; created on the first start when missing)")
	fs.BoolVar(&o.RotateCA, "rotate-ca", o.RotateCA, "make a new CA when the key at --ca-key-file is missing or is not the stored CA's (every cluster must then enrol again); without it the hub refuses to start")
	fs.BoolVar(&o.RestoreMode, "restore-mode", o.RestoreMode, "after restoring --state-dir from a backup: accept agents' certificates this hub issued after the backup was taken")
	l := &o.AgentLimits
	fs.IntVar(&l.MaxConns, "agent-max-conns", l.MaxConns, "connections the agent port holds at most (lowered to fit the open-file limit)")
	fs.IntVar(&l.MaxUnauthenticatedConns, "agent-max-unauthenticated-conns", l.MaxUnauthenticatedConns, "agent port connections without a verified client certificate (in their TLS handshake or enrolling) held at most")
	fs.IntVar(&l.MaxUnauthenticatedConnsPerIP, "agent-max-unauthenticated-conns-per-ip", l.MaxUnauthenticatedConnsPerIP, "the same, per source address")
	fs.DurationVar(&l.HandshakeTimeout, "agent-handshake-timeout", l.HandshakeTimeout, "longest TLS handshake on the agent port")
	fs.DurationVar(&l.UnauthenticatedIdle, "agent-unauthenticated-idle-timeout", l.UnauthenticatedIdle, "a connection without a client certificate and no call in flight is closed after this")
	fs.Float64Var(&o.EnrollPerSecond, "agent-enroll-rate", o.EnrollPerSecond, "Enroll calls per second per source address (bursts of --agent-enroll-burst)")
	fs.IntVar(&l.EnrollBurst, "agent-enroll-burst", l.EnrollBurst, "burst of Enroll calls per source address")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "trace, debug, info, warn or error")
	fs.BoolVar(&o.LogJSON, "log-json", o.LogJSON, "log in JSON")
	fs.StringVar(&o.DebugListen, "debug-listen", o.DebugListen, "address of Go's pprof handlers (for example 127.0.0.1:6060; empty disables)")
	fs.IntVar(&o.GCPercent, "gc-percent", o.GCPercent, "Go garbage collection target, as GOGC (0: Go's default); the GOGC environment variable wins")
	o.Render.BindFlags(fs)
	fs.StringVar(&o.RenderWorkerBinary, "render-worker-binary", o.RenderWorkerBinary, "the flotilla-render binary that renders Helm, Kustomize and Jsonnet and fetches charts in worker processes (default: flotilla-render next to the hub's executable)")
	o.Store.BindFlags(fs)
	o.HA.BindFlags(fs)
	o.Auth.BindFlags(fs)
	fs.DurationVar(&o.APITokenTTL, "api-token-ttl", o.APITokenTTL, "lifetime of an API token made without --ttl")
	fs.DurationVar(&o.APITokenMaxTTL, "api-token-max-ttl", o.APITokenMaxTTL, "longest lifetime an API token may be given")
	o.Live.BindFlags(fs)
	fs.StringVar(&o.MemoryLimit, "memory-limit", o.MemoryLimit, "Go soft memory limit, for example 900Mi or 2Gi (default: 90% of the container's memory limit, none outside one); the GOMEMLIMIT environment variable wins")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.StateDir == "" {
		errs = append(errs, errors.New("--state-dir is required"))
	}
	if o.AppsDir == "" && o.AppsRepo == "" {
		errs = append(errs, errors.New("one of --apps-dir or --apps-repo is required"))
	}
	if (o.HTTPTLSCertFile == "") != (o.HTTPTLSKeyFile == "") {
		errs = append(errs, errors.New("--http-tls-cert-file and --http-tls-key-file go together"))
	}
	if o.PollInterval < time.Second {
		errs = append(errs, fmt.Errorf("--poll-interval %s: must be at least 1s", o.PollInterval))
	}
	if err := o.Git.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.GCPercent < 0 {
		errs = append(errs, fmt.Errorf("--gc-percent %d: must not be negative", o.GCPercent))
	}
	if o.EnrollPerSecond < 0 {
		errs = append(errs, fmt.Errorf("--agent-enroll-rate %g: must not be negative", o.EnrollPerSecond))
	}
	if o.CertTTL < 2*time.Minute {
		errs = append(errs, fmt.Errorf("--cert-ttl %s: must be at least 2m", o.CertTTL))
	}
	if err := o.Store.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Store.Kind == StoreKubernetes {
		if err := o.HA.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Store.Kind == StoreKubernetes && o.RotateCA {
		errs = append(errs, errors.New("--rotate-ca: not with --store=kubernetes (delete the CA Secret instead)"))
	}
	if err := o.Render.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.APITokenTTL <= 0 || o.APITokenMaxTTL < o.APITokenTTL {
		errs = append(errs, fmt.Errorf("--api-token-ttl %s, --api-token-max-ttl %s: want 0 < ttl <= max", o.APITokenTTL, o.APITokenMaxTTL))
	}
	if err := o.Live.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
