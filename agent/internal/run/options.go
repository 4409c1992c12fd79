package run

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/agent/internal/engine"
	"github.com/flotilla-cd/flotilla/agent/internal/policy"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Options configure the agent. Every flag can also be set from
// FLOTILLA_<FLAG>, so the join token can come from a Secret.
type Options struct {
	Hub        string
	ServerName string
	Cluster    string
	JoinToken  string
	CAHash     string
	CAFile     string

	Kubeconfig      string
	Namespace       string
	WatchNamespaces []string
	IdentityDir     string
	IdentitySecret  string
	// SelfName is the name of the agent's own Deployment and
	// ServiceAccount, which no bundle may write (policy.Self).
	SelfName string

	// Cluster-side policy (package policy): from flags and/or a ConfigMap
	// in Namespace; an object must pass both.
	PolicyConfigMap     string
	PolicyNamespaces    []string
	PolicyAllowKinds    []string
	PolicyDenyKinds     []string
	PolicyClusterScoped bool

	// Live-view limits (see docs/protocol.md).
	LiveMaxRequests       int
	LiveMaxLogs           int
	LiveLogBytesPerSecond int

	// OrphansInterval is how often the agent looks for orphaned objects
	// for apps whose project asks for it (engine.Options.OrphansEvery).
	OrphansInterval time.Duration

	MetricsListen string
	Pprof         bool
	LogLevel      string
	LogJSON       bool
}

// DefaultOptions returns the defaults, in one place.
func DefaultOptions() Options {
	return Options{
		Namespace:       "flotilla-system",
		IdentitySecret:  "flotilla-agent-identity",
		SelfName:        "flotilla-agent",
		MetricsListen:   ":8081",
		OrphansInterval: engine.DefaultOrphansEvery,
		LogLevel:        "info",

		PolicyClusterScoped: true,

		LiveMaxRequests:       32,
		LiveMaxLogs:           16,
		LiveLogBytesPerSecond: 1 << 20,
	}
}

// BindFlags registers the options on fs.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Hub, "hub", o.Hub, "host:port of the hub's agent endpoint")
	fs.StringVar(&o.ServerName, "server-name", o.ServerName, "name to verify in the hub's certificate (default: the host of --hub)")
	fs.StringVar(&o.Cluster, "cluster", o.Cluster, "this cluster's name, as registered with `flotilla cluster add`")
	fs.StringVar(&o.JoinToken, "join-token", o.JoinToken, "one-time join token; needed only until the agent has enrolled")
	fs.StringVar(&o.CAHash, "ca-hash", o.CAHash, "sha256 pin of the hub CA, as printed by `flotilla cluster add`")
	fs.StringVar(&o.CAFile, "ca-file", o.CAFile, "trust this hub CA certificate file instead of a pin")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the cluster to manage (default: in-cluster config)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the agent's own state (inventories, bundles, identity)")
	fs.StringSliceVar(&o.WatchNamespaces, "watch-namespaces", o.WatchNamespaces, "manage only these namespaces (comma-separated), for an agent whose RBAC covers only them: objects are watched per namespace, and cluster-scoped objects or objects in other namespaces are refused (default: all namespaces and cluster-scoped objects)")
	fs.StringVar(&o.PolicyConfigMap, "policy-configmap", o.PolicyConfigMap, "read the cluster's policy from this ConfigMap in --namespace (keys namespaces, allowKinds, denyKinds, clusterScoped) and follow its changes; while it is missing or malformed nothing is applied")
	fs.StringSliceVar(&o.PolicyNamespaces, "policy-namespaces", o.PolicyNamespaces, "cluster policy: namespaced objects only in these namespaces (globs, comma-separated; default any)")
	fs.StringSliceVar(&o.PolicyAllowKinds, "policy-allow-kinds", o.PolicyAllowKinds, "cluster policy: apply only these kinds (group/Kind globs, Kind for the core group; default any)")
	fs.StringSliceVar(&o.PolicyDenyKinds, "policy-deny-kinds", o.PolicyDenyKinds, "cluster policy: never apply these kinds (group/Kind globs, e.g. rbac.authorization.k8s.io/ClusterRoleBinding)")
	fs.BoolVar(&o.PolicyClusterScoped, "policy-cluster-scoped", o.PolicyClusterScoped, "cluster policy: may cluster-scoped objects be applied")
	fs.StringVar(&o.SelfName, "self-name", o.SelfName, "name of the agent's own Deployment, ServiceAccount and ClusterRoleBinding: bundles may not write these, the Roles and RoleBindings of --namespace, the identity Secret or the policy ConfigMap")
	fs.StringVar(&o.IdentityDir, "identity-dir", o.IdentityDir, "keep the identity in this folder instead of a Secret")
	fs.StringVar(&o.IdentitySecret, "identity-secret", o.IdentitySecret, "name of the Secret that holds the identity")
	fs.IntVar(&o.LiveMaxRequests, "live-max-requests", o.LiveMaxRequests, "live-view requests (tree, manifest, events, logs, actions) served at once; more are refused as busy")
	fs.IntVar(&o.LiveMaxLogs, "live-max-logs", o.LiveMaxLogs, "pod log streams served at once")
	fs.IntVar(&o.LiveLogBytesPerSecond, "live-log-bytes-per-second", o.LiveLogBytesPerSecond, "pod log bytes sent to the hub per second, all streams together")
	fs.DurationVar(&o.OrphansInterval, "orphans-interval", o.OrphansInterval, "how often to look for orphaned objects in the destination namespaces of apps whose project sets orphanedResources (also shortly after each sync and refresh)")
	fs.StringVar(&o.MetricsListen, "metrics-listen", o.MetricsListen, "address of /metrics and /healthz (empty disables)")
	fs.BoolVar(&o.Pprof, "pprof", o.Pprof, "also serve Go's pprof handlers on --metrics-listen")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "trace, debug, info, warn or error")
	fs.BoolVar(&o.LogJSON, "log-json", o.LogJSON, "log in JSON")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Hub == "" {
		errs = append(errs, errors.New("--hub is required"))
	}
	if o.Cluster == "" {
		errs = append(errs, errors.New("--cluster is required"))
	}
	if o.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		errs = append(errs, errors.New("--kubeconfig is required outside a cluster"))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace is required"))
	}
	if o.OrphansInterval < time.Second {
		errs = append(errs, errors.New("--orphans-interval must be at least 1s"))
	}
	if o.LiveMaxRequests < 1 || o.LiveMaxLogs < 1 || o.LiveLogBytesPerSecond < 1 {
		errs = append(errs, errors.New("--live-max-requests, --live-max-logs and --live-log-bytes-per-second must be at least 1"))
	}
	if err := o.flagPolicy().Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range o.WatchNamespaces {
		if ns = strings.TrimSpace(ns); ns == "" {
			continue
		}
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}

// flagPolicy is the cluster policy the flags set.
func (o *Options) flagPolicy() policy.Policy {
	return policy.Policy{Source: "flags", Namespaces: o.PolicyNamespaces, AllowKinds: o.PolicyAllowKinds, DenyKinds: o.PolicyDenyKinds, NoClusterScoped: !o.PolicyClusterScoped}
}
