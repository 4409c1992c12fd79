package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/hub/internal/httpapi"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// Exit codes a script can rely on.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitTimeout = 3
)

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// ErrTimeout is returned by `app wait` when its timeout passes.
var ErrTimeout = errors.New("timed out")

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
	}
	return ExitFailure
}

const usage = `flotilla is the command line of the Flotilla hub.

Usage:
  flotilla login --server URL --token TOKEN
  flotilla cluster add NAME [--label k=v]...   register a cluster, print its join command
  flotilla cluster list | get NAME | remove NAME | token NAME
  flotilla cluster label NAME k=v... [k-]...
  flotilla app list | get NAME
  flotilla app sync NAME [--cluster C] [--prune]
  flotilla app wait NAME [--cluster C] [--timeout 5m] [--health]
  flotilla refresh
  flotilla version

Global flags: --server URL, --token TOKEN (or FLOTILLA_SERVER, FLOTILLA_TOKEN, or the
saved login), -o table|json|yaml.
`

// Run runs the CLI with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("flotilla", pflag.ContinueOnError)
	fs.SetInterspersed(true)
	fs.SetOutput(io.Discard)
	cfg := loadConfig()
	server := fs.String("server", envOr("FLOTILLA_SERVER", cfg.Server), "hub URL")
	token := fs.String("token", envOr("FLOTILLA_TOKEN", cfg.Token), "API token")
	out := fs.StringP("output", "o", "table", "table, json or yaml")
	labels := fs.StringArray("label", nil, "label k=v (cluster add)")
	cluster := fs.String("cluster", "", "limit to one cluster")
	prune := fs.Bool("prune", false, "also prune (app sync)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long app wait waits")
	health := fs.Bool("health", true, "app wait also waits for Healthy")
	help := fs.BoolP("help", "h", false, "help")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	pos := fs.Args()
	if *help || len(pos) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	c := newClient(*server, *token)
	w := stdout
	switch pos[0] {
	case "version":
		fmt.Fprintln(w, version.Version)
		return nil
	case "login":
		if *server == "" || *token == "" {
			return usageError{"login needs --server and --token"}
		}
		if err := c.do(ctx, "GET", "/api/v1/clusters?limit=1", nil, nil); err != nil {
			return fmt.Errorf("login to %s: %w", *server, err)
		}
		if err := saveConfig(Config{Server: *server, Token: *token}); err != nil {
			return err
		}
		fmt.Fprintf(w, "Logged in to %s (saved in %s)\n", *server, ConfigPath())
		return nil
	case "refresh":
		if err := c.do(ctx, "POST", "/api/v1/refresh", nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(w, "Refresh requested")
		return nil
	case "cluster", "clusters":
		return clusterCmd(ctx, c, pos[1:], *out, *labels, w)
	case "app", "apps":
		return appCmd(ctx, c, pos[1:], appFlags{out: *out, cluster: *cluster, prune: *prune, timeout: *timeout, health: *health}, w, stderr)
	}
	return usageError{fmt.Sprintf("unknown command %q; see `flotilla --help`", pos[0])}
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

func parseLabels(kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if strings.HasSuffix(kv, "-") && !ok {
			m[strings.TrimSuffix(kv, "-")] = ""
			continue
		}
		if !ok || k == "" || v == "" {
			return nil, usageError{fmt.Sprintf("label %q: want key=value (or key- to remove)", kv)}
		}
		m[k] = v
	}
	return m, nil
}

func clusterCmd(ctx context.Context, c *client, args []string, out string, labels []string, w io.Writer) error {
	if err := need(args, 1, "cluster subcommand (add, list, get, remove, label, token)"); err != nil {
		return err
	}
	switch args[0] {
	case "add", "token":
		if err := need(args, 2, "cluster name"); err != nil {
			return err
		}
		var jr httpapi.JoinResponse
		var err error
		if args[0] == "add" {
			l, lerr := parseLabels(labels)
			if lerr != nil {
				return lerr
			}
			err = c.do(ctx, "POST", "/api/v1/clusters", httpapi.AddClusterRequest{Name: args[1], Labels: l}, &jr)
		} else {
			err = c.do(ctx, "POST", "/api/v1/clusters/"+args[1]+"/token", nil, &jr)
		}
		if err != nil {
			return err
		}
		return printOut(w, out, jr, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "Cluster %s registered. Join token (shown once, expires %s):\n\n", jr.Cluster, jr.ExpiresAt.Format(time.RFC3339))
			fmt.Fprintf(tw, "  %s\n\nRun the agent with:\n\n  %s --kubeconfig KUBECONFIG\n\n", jr.Token, jr.Command)
			fmt.Fprintf(tw, "or install it in the cluster:\n\n  kubectl apply -k deploy/agent && kubectl -n flotilla-system create secret generic flotilla-agent-join \\\n    --from-literal=FLOTILLA_HUB=%s --from-literal=FLOTILLA_CLUSTER=%s \\\n    --from-literal=FLOTILLA_JOIN_TOKEN=%s --from-literal=FLOTILLA_CA_HASH=%s\n", jr.HubAddr, jr.Cluster, jr.Token, jr.CAHash)
		})
	case "list":
		var lr httpapi.ListResponse[httpapi.ClusterView]
		if err := listAll(ctx, c, "/api/v1/clusters", &lr); err != nil {
			return err
		}
		return printOut(w, out, lr.Items, func(tw *tabwriter.Writer) {
			row(tw, "NAME", "CONNECTED", "LAST SEEN", "AGENT", "LABELS")
			for _, cv := range lr.Items {
				row(tw, cv.Name, yesNo(cv.Connected), ago(cv.LastSeen), orDash(cv.AgentVersion), orDash(labelString(cv.Labels)))
			}
		})
	case "get":
		if err := need(args, 2, "cluster name"); err != nil {
			return err
		}
		var cv httpapi.ClusterView
		if err := c.do(ctx, "GET", "/api/v1/clusters/"+args[1], nil, &cv); err != nil {
			return err
		}
		return printOut(w, out, cv, func(tw *tabwriter.Writer) {
			row(tw, "Name:", cv.Name)
			row(tw, "Connected:", yesNo(cv.Connected))
			row(tw, "Enrolled:", yesNo(cv.Enrolled))
			row(tw, "Last seen:", ago(cv.LastSeen))
			row(tw, "Agent version:", orDash(cv.AgentVersion))
			row(tw, "Labels:", orDash(labelString(cv.Labels)))
		})
	case "remove", "rm", "delete":
		if err := need(args, 2, "cluster name"); err != nil {
			return err
		}
		if err := c.do(ctx, "DELETE", "/api/v1/clusters/"+args[1], nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(w, "Cluster %s removed; its agent's identity is revoked\n", args[1])
		return nil
	case "label":
		if err := need(args, 3, "cluster name and labels"); err != nil {
			return err
		}
		l, err := parseLabels(args[2:])
		if err != nil {
			return err
		}
		var cv httpapi.ClusterView
		if err := c.do(ctx, "PATCH", "/api/v1/clusters/"+args[1]+"/labels", httpapi.LabelRequest{Labels: l}, &cv); err != nil {
			return err
		}
		fmt.Fprintf(w, "Cluster %s labels: %s\n", cv.Name, orDash(labelString(cv.Labels)))
		return nil
	}
	return usageError{fmt.Sprintf("unknown cluster subcommand %q", args[0])}
}

func listAll[T any](ctx context.Context, c *client, path string, into *httpapi.ListResponse[T]) error {
	after := ""
	for {
		var page httpapi.ListResponse[T]
		p := path + "?limit=1000"
		if after != "" {
			p += "&after=" + after
		}
		if err := c.do(ctx, "GET", p, nil, &page); err != nil {
			return err
		}
		into.Items = append(into.Items, page.Items...)
		if page.Next == "" {
			return nil
		}
		after = page.Next
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + l[k]
	}
	return strings.Join(keys, ",")
}
