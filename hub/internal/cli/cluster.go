package cli

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// parseLabels reads key=value (set) and key- (remove) arguments. The hub
// checks that keys and values are Kubernetes label keys and values and
// names the one it refuses; the CLI does not link Kubernetes' validation.
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

func clusterCmd(ctx context.Context, c *client, args []string, f flags, e env) error {
	if err := need(args, 1, "cluster subcommand (add, list, get, remove, label, token)"); err != nil {
		return err
	}
	w, out := e.stdout, f.out
	switch args[0] {
	case "add", "token":
		if err := need(args, 2, "cluster name"); err != nil {
			return err
		}
		var jr api.JoinResponse
		var err error
		if args[0] == "add" {
			l, lerr := parseLabels(f.labels)
			if lerr != nil {
				return lerr
			}
			err = c.do(ctx, "POST", "/api/v1/clusters", api.AddClusterRequest{Name: args[1], Labels: l}, &jr)
		} else {
			err = c.do(ctx, "POST", "/api/v1/clusters/"+url.PathEscape(args[1])+"/token", nil, &jr)
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
		var lr api.ListResponse[api.ClusterView]
		if err := listAll(ctx, c, "/api/v1/clusters", &lr); err != nil {
			return err
		}
		return printOut(w, out, lr.Items, func(tw *tabwriter.Writer) {
			row(tw, "NAME", "CONNECTED", "LAST SEEN", "AGENT", "LABELS")
			for _, cv := range lr.Items {
				row(tw, cv.Name, yesNo(cv.Connected), lastSeen(cv, e.now()), orDash(cv.AgentVersion), orDash(labelString(cv.Labels)))
			}
		})
	case "get":
		if err := need(args, 2, "cluster name"); err != nil {
			return err
		}
		var cv api.ClusterView
		if err := c.do(ctx, "GET", "/api/v1/clusters/"+url.PathEscape(args[1]), nil, &cv); err != nil {
			return err
		}
		return printOut(w, out, cv, func(tw *tabwriter.Writer) {
			row(tw, "Name:", cv.Name)
			row(tw, "Connected:", yesNo(cv.Connected))
			row(tw, "Enrolled:", yesNo(cv.Enrolled))
			row(tw, "Last seen:", lastSeen(cv, e.now()))
			row(tw, "Agent version:", orDash(cv.AgentVersion))
			row(tw, "Labels:", orDash(labelString(cv.Labels)))
		})
	case "remove", "rm", "delete":
		if err := need(args, 2, "cluster name"); err != nil {
			return err
		}
		if err := c.do(ctx, "DELETE", "/api/v1/clusters/"+url.PathEscape(args[1]), nil, nil); err != nil {
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
		var cv api.ClusterView
		if err := c.do(ctx, "PATCH", "/api/v1/clusters/"+url.PathEscape(args[1])+"/labels", api.LabelRequest{Labels: l}, &cv); err != nil {
			return err
		}
		fmt.Fprintf(w, "Cluster %s labels: %s\n", cv.Name, orDash(labelString(cv.Labels)))
		return nil
	}
	return usageError{fmt.Sprintf("unknown cluster subcommand %q", args[0])}
}

// listAll reads every page of a list.
func listAll[T any](ctx context.Context, c *client, path string, into *api.ListResponse[T]) error {
	after := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	into.Items = []T{}
	for {
		var page api.ListResponse[T]
		p := path + sep + "limit=1000"
		if after != "" {
			p += "&after=" + url.QueryEscape(after)
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

// lastSeen is "now" for a connected agent, else how long ago it was seen.
func lastSeen(cv api.ClusterView, now time.Time) string {
	switch {
	case cv.Connected:
		return "now"
	case cv.LastSeen.IsZero():
		return "never"
	}
	return now.Sub(cv.LastSeen).Round(time.Second).String() + " ago"
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
