package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/shared/version"
)

// Exit codes a script can rely on.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitTimeout = 3
	// ExitDiff is returned by `app diff` when live state differs from git.
	ExitDiff = 4
)

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// ErrTimeout is returned by `app wait` when its timeout passes.
var ErrTimeout = errors.New("timed out")

// ErrDiff is returned by `app diff` when some object differs.
var ErrDiff = errors.New("live state differs from the desired state")

// ErrDefinitions is returned by `definitions` when some definition could
// not be used, so that CI can gate on it.
var ErrDefinitions = errors.New("definitions have errors")

// ExitCode maps an error from Run to the process exit code.
func ExitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, ErrTimeout):
		return ExitTimeout
	case errors.Is(err, ErrDiff):
		return ExitDiff
	}
	return ExitFailure
}

const usage = `flotilla is the command line of the Flotilla hub.

Usage:
  flotilla login --server URL --token TOKEN     check and save the hub and token
  flotilla login --server URL --sso             sign in through the hub's single sign-on in the browser
                                               (--sso-device: with a code, the default without a browser)
  flotilla cluster add NAME [--label k=v]...   register a cluster, print its join command
  flotilla cluster list | get NAME | remove NAME | token NAME
  flotilla cluster label NAME k=v... [k-]...
  flotilla app list | get NAME
  flotilla app diff NAME [--cluster C]          exit 4 when live differs from git
  flotilla app sync NAME [--cluster C] [--prune]
  flotilla app refresh NAME [--cluster C]
  flotilla app history NAME [--cluster C]
  flotilla app rollback NAME (REVISION | --history ID) [--cluster C]
  flotilla app unpin NAME [--cluster C]
  flotilla app wait NAME [--cluster C] [--timeout 5m] [--health=false]
  flotilla app resources NAME [--cluster C]     live resource tree with health, read by the agent now
  flotilla app manifests NAME [--cluster C]     what the hub rendered (Secret values redacted)
  flotilla app events NAME [KIND/NAME] [-c C] [-n NS]
  flotilla app action NAME restart deploy/N | delete pod/N | run-cronjob cronjob/N [-c C] [-n NS]
  flotilla rollout status|pause|resume|approve|abort|retry APP
                                               an app's progressive rollout (docs/rollouts.md)
  flotilla logs APP [POD | deploy/NAME] [-c CLUSTER] [-n NS] [-f] [--container C] [--tail N] [--since 10m]
  flotilla token create NAME [--role readonly|deployer|admin] [--project P]... [--ttl 720h]
  flotilla token list | delete ID
  flotilla refresh
  flotilla definitions                          where definitions stand: load error, warnings
  flotilla backup FILE                          online snapshot of the hub's store
  flotilla version

Global flags: --server URL, --token TOKEN (or FLOTILLA_SERVER, FLOTILLA_TOKEN, or the
saved login), -o table|json|yaml.

Exit codes: 0 ok, 1 failure, 2 usage, 3 app wait timed out, 4 app diff found differences.
`

// flags are every command's options.
type flags struct {
	server, token string
	out           string
	labels        []string
	cluster       string
	prune         bool
	timeout       time.Duration
	health        bool
	history       uint64
	role          string
	projects      []string
	ttl           string
	sso           bool
	ssoDevice     bool
	namespace     string
	follow        bool
	container     string
	tail          int
	since         time.Duration
}

// env is what a run talks to; tests replace the clock.
type env struct {
	stdout, stderr io.Writer
	now            func() time.Time
}

// Run runs the CLI with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, env{stdout: stdout, stderr: stderr, now: time.Now}, args)
}

func run(ctx context.Context, e env, args []string) error {
	fs := pflag.NewFlagSet("flotilla", pflag.ContinueOnError)
	fs.SetInterspersed(true)
	fs.SetOutput(io.Discard)
	cfg := loadConfig()
	var f flags
	fs.StringVar(&f.server, "server", envOr("FLOTILLA_SERVER", cfg.Server), "hub URL")
	fs.StringVar(&f.token, "token", envOr("FLOTILLA_TOKEN", cfg.Token), "API token")
	fs.StringVarP(&f.out, "output", "o", "table", "table, json or yaml")
	fs.StringArrayVar(&f.labels, "label", nil, "label k=v (cluster add)")
	fs.StringVarP(&f.cluster, "cluster", "c", "", "limit to one cluster")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the object (logs, app events, app action)")
	fs.BoolVarP(&f.follow, "follow", "f", false, "follow the log (logs)")
	fs.StringVar(&f.container, "container", "", "container of the pod (logs; default: its first)")
	fs.IntVar(&f.tail, "tail", -1, "only the last N lines (logs)")
	fs.DurationVar(&f.since, "since", 0, "only lines newer than this, for example 10m (logs)")
	fs.BoolVar(&f.prune, "prune", false, "also prune (app sync)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long app wait waits")
	fs.BoolVar(&f.health, "health", true, "app wait also waits for Healthy")
	fs.Uint64Var(&f.history, "history", 0, "history entry to roll back to (app rollback)")
	fs.StringVar(&f.role, "role", "readonly", "role of a new token: readonly, deployer (with --project) or admin")
	fs.StringArrayVar(&f.projects, "project", nil, "project a deployer token may deploy (token create; repeatable)")
	fs.StringVar(&f.ttl, "ttl", "", "lifetime of a new token, e.g. 720h (token create; default: the hub's)")
	fs.BoolVar(&f.sso, "sso", false, "sign in through the hub's single sign-on provider, in the browser (login)")
	fs.BoolVar(&f.ssoDevice, "sso-device", false, "sign in through single sign-on with a device code, e.g. without a browser here (login; implies --sso)")
	help := fs.BoolP("help", "h", false, "help")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	pos := fs.Args()
	if *help || len(pos) == 0 {
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	c := newClient(f.server, f.token)
	w := e.stdout
	switch pos[0] {
	case "version":
		fmt.Fprintln(w, version.Version)
		return nil
	case "login":
		if f.sso || f.ssoDevice {
			return loginSSO(ctx, c, f, w, e.stderr)
		}
		return login(ctx, c, f, w, e.stderr)
	case "refresh":
		if err := c.do(ctx, "POST", "/api/v1/refresh", nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(w, "Refresh requested")
		return nil
	case "cluster", "clusters":
		return clusterCmd(ctx, c, pos[1:], f, e)
	case "app", "apps":
		return appCmd(ctx, c, pos[1:], f, e)
	case "logs", "log":
		return logsCmd(ctx, c, pos[1:], f, e)
	case "rollout", "rollouts":
		return rolloutCmd(ctx, c, pos[1:], f, e)
	case "token", "tokens":
		return tokenCmd(ctx, c, pos[1:], f, e)
	case "backup":
		return backupCmd(ctx, c, pos[1:], w)
	case "definitions", "defs":
		return definitionsCmd(ctx, c, f, w)
	}
	return usageError{fmt.Sprintf("unknown command %q; see `flotilla --help`", pos[0])}
}

func login(ctx context.Context, c *client, f flags, w, stderr io.Writer) error {
	if f.server == "" || f.token == "" {
		return usageError{"login needs --server and --token (or --sso)"}
	}
	if insecureRemote(f.server) {
		fmt.Fprintf(stderr, "WARNING: %s is plain http to another host: the token travels unencrypted and anyone on the path can read and reuse it; use https\n", f.server)
	}
	var who struct{ Name, Role string }
	if err := c.do(ctx, "GET", "/api/v1/whoami", nil, &who); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if err := saveConfig(Config{Server: f.server, Token: f.token}); err != nil {
		return fmt.Errorf("login: save %s: %w", ConfigPath(), err)
	}
	fmt.Fprintf(w, "Logged in to %s as %s (%s); saved in %s\n", f.server, who.Name, who.Role, ConfigPath())
	return nil
}

// insecureRemote reports whether server is a plain-http URL to a host
// other than this machine's loopback.
func insecureRemote(server string) bool {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func need(args []string, n int, what string) error {
	if len(args) < n {
		return usageError{"missing " + what}
	}
	return nil
}
