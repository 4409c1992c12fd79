package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
)

func appPath(name, rest string) string { return "/api/v1/apps/" + url.PathEscape(name) + rest }

func appCmd(ctx context.Context, c *client, args []string, f flags, e env) error {
	if err := need(args, 1, "app subcommand (list, get, diff, sync, refresh, history, rollback, unpin, wait, resources, manifests, events, action)"); err != nil {
		return err
	}
	w := e.stdout
	if args[0] == "list" {
		var lr api.ListResponse[api.AppView]
		if err := listAll(ctx, c, "/api/v1/apps", &lr); err != nil {
			return err
		}
		return printOut(w, f.out, lr.Items, func(tw *tabwriter.Writer) { appTable(tw, lr.Items) })
	}
	if err := need(args, 2, "app name"); err != nil {
		return err
	}
	name := args[1]
	switch args[0] {
	case "get":
		var v api.AppView
		if err := c.do(ctx, "GET", appPath(name, ""), nil, &v); err != nil {
			return err
		}
		return printOut(w, f.out, v, func(tw *tabwriter.Writer) { appDetail(tw, v) })
	case "diff":
		return diff(ctx, c, name, f, w)
	case "sync", "refresh":
		var sr api.SyncResponse
		if err := c.do(ctx, "POST", appPath(name, "/"+args[0]), api.SyncRequest{Cluster: f.cluster, Prune: f.prune}, &sr); err != nil {
			return err
		}
		return printOut(w, f.out, sr, func(tw *tabwriter.Writer) {
			verb := map[string]string{"sync": "Sync", "refresh": "Refresh"}[args[0]]
			fmt.Fprintf(tw, "%s of %s sent to %s\n", verb, name, orDash(strings.Join(sr.Sent, ", ")))
			keys := make([]string, 0, len(sr.Failed))
			for k := range sr.Failed {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, cl := range keys {
				fmt.Fprintf(tw, "  not sent to %s: %s\n", cl, sr.Failed[cl])
			}
		})
	case "history":
		q := appPath(name, "/history")
		if f.cluster != "" {
			q += "?cluster=" + url.QueryEscape(f.cluster)
		}
		var lr api.ListResponse[api.HistoryEntry]
		if err := listAll(ctx, c, q, &lr); err != nil {
			return err
		}
		return printOut(w, f.out, lr.Items, func(tw *tabwriter.Writer) { historyTable(tw, lr.Items) })
	case "rollback":
		req := api.RollbackRequest{HistoryID: f.history, Cluster: f.cluster}
		if len(args) > 2 {
			req.Revision = args[2]
		}
		if (req.Revision == "") == (req.HistoryID == 0) {
			return usageError{"app rollback needs a REVISION or --history ID (one of them)"}
		}
		var rr api.RollbackResponse
		if err := c.do(ctx, "POST", appPath(name, "/rollback"), req, &rr); err != nil {
			return err
		}
		return printOut(w, f.out, rr, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "%s pinned to %s; auto-sync suspended until `flotilla app unpin %s`\n", rr.App, shortRev(rr.Revision), rr.App)
			row(tw, "CLUSTER", "SYNC", "MESSAGE")
			for _, t := range rr.Targets {
				row(tw, t.Cluster, t.Sync, orDash(t.Message))
			}
		})
	case "unpin":
		if err := c.do(ctx, "POST", appPath(name, "/unpin"), api.UnpinRequest{Cluster: f.cluster}, nil); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s unpinned%s; auto-sync follows git again\n", name, onCluster(f.cluster))
		return nil
	case "wait":
		return wait(ctx, c, name, f, e)
	case "resources", "tree":
		return resources(ctx, c, name, f, w)
	case "manifests":
		return manifests(ctx, c, name, f, w)
	case "events":
		return appEvents(ctx, c, name, args[2:], f, w)
	case "action":
		return action(ctx, c, name, args[2:], f, w)
	}
	return usageError{fmt.Sprintf("unknown app subcommand %q", args[0])}
}

func onCluster(c string) string {
	if c == "" {
		return ""
	}
	return " on " + c
}

// diff prints each cluster's diff and returns ErrDiff when any differs.
func diff(ctx context.Context, c *client, name string, f flags, w io.Writer) error {
	q := appPath(name, "/diff")
	if f.cluster != "" {
		q += "?cluster=" + url.QueryEscape(f.cluster)
	}
	var dr api.DiffResponse
	if err := c.do(ctx, "GET", q, nil, &dr); err != nil {
		return err
	}
	differs, failed := false, 0
	err := printOut(w, f.out, dr, func(tw *tabwriter.Writer) {
		for _, cd := range dr.Clusters {
			switch {
			case !cd.OK:
				fmt.Fprintf(tw, "=== %s: no diff: %s\n", cd.Cluster, cd.Error)
			case cd.Diff == "":
				fmt.Fprintf(tw, "=== %s: in sync\n", cd.Cluster)
			default:
				fmt.Fprintf(tw, "=== %s: %s\n%s", cd.Cluster, cd.Summary, cd.Diff)
			}
		}
	})
	for _, cd := range dr.Clusters {
		differs = differs || cd.Diff != ""
		if !cd.OK {
			failed++
		}
	}
	switch {
	case err != nil:
		return err
	case differs:
		return fmt.Errorf("app %s: %w", name, ErrDiff)
	case failed > 0:
		return fmt.Errorf("app %s: diff failed on %d of %d clusters", name, failed, len(dr.Clusters))
	}
	return nil
}

func appTable(tw *tabwriter.Writer, apps []api.AppView) {
	row(tw, "APP", "CLUSTER", "SYNC", "HEALTH", "REVISION", "MESSAGE")
	for _, a := range apps {
		if len(a.Clusters) == 0 || a.Error != "" {
			cluster := "-"
			if a.Hub {
				cluster = "(hub)"
			}
			row(tw, a.Name, cluster, a.Sync, a.Health, shortRev(a.Revision), orDash(oneLine(a.Error)))
		}
		for _, wn := range a.Warnings {
			row(tw, a.Name, "-", "Unknown", "Unknown", "-", "warning: "+oneLine(wn))
		}
		for _, cv := range a.Clusters {
			row(tw, a.Name, cv.Cluster, cv.Sync, cv.Health, shortRev(cv.Revision), orDash(oneLine(clusterMessage(cv))))
		}
	}
}

func clusterMessage(cv api.AppClusterView) string {
	var parts []string
	if cv.Pinned != "" {
		parts = append(parts, "pinned to "+shortRev(cv.Pinned)+", auto-sync suspended")
	}
	switch {
	case cv.Error != "":
		parts = append(parts, cv.Error)
	case cv.Message != "":
		parts = append(parts, cv.Message)
	case !cv.Connected:
		parts = append(parts, "agent not connected")
	}
	for _, c := range cv.Conditions {
		parts = append(parts, c.Type+": "+c.Message)
	}
	return strings.Join(parts, "; ")
}

func appDetail(tw *tabwriter.Writer, v api.AppView) {
	row(tw, "Name:", v.Name)
	row(tw, "Defined in:", orDash(v.File))
	if v.Parent != "" {
		row(tw, "Parent:", v.Parent+" (app-of-apps: removed with it)")
	}
	if v.Hub {
		row(tw, "Destination:", "the hub (app-of-apps root: defines apps, deploys nothing)")
	}
	row(tw, "Revision:", orDash(v.Revision))
	row(tw, "Sync:", v.Sync)
	row(tw, "Health:", v.Health)
	if v.Error != "" {
		row(tw, "Error:", v.Error)
	}
	for _, wn := range v.Warnings {
		row(tw, "Warning:", wn)
	}
	row(tw, "")
	row(tw, "CLUSTER", "SYNC", "HEALTH", "REVISION", "LAST SYNC", "MESSAGE")
	for _, cv := range v.Clusters {
		last := "-"
		if op := cv.LastOperation; op != nil {
			last = op.Phase + " by " + orDash(op.InitiatedBy)
		}
		row(tw, cv.Cluster, cv.Sync, cv.Health, shortRev(cv.Revision), last, orDash(oneLine(clusterMessage(cv))))
	}
	row(tw, "")
	row(tw, "CLUSTER", "KIND", "NAMESPACE", "NAME", "SYNC", "HEALTH", "MESSAGE")
	for _, cv := range v.Clusters {
		for _, o := range cv.Objects {
			row(tw, cv.Cluster, o.Kind, orDash(o.Namespace), o.Name, o.Sync, o.Health, orDash(oneLine(o.Message)))
		}
	}
	hookRows(tw, v.Clusters)
	orphanRows(tw, v.Clusters)
}

// orphanRows lists what each cluster's agent found orphaned in the app's
// destination namespace (the project's orphanedResources).
func orphanRows(tw *tabwriter.Writer, clusters []api.AppClusterView) {
	header := false
	for _, cv := range clusters {
		o := cv.Orphaned
		if o == nil || (o.Count == 0 && o.Error == "") {
			continue
		}
		if !header {
			row(tw, "")
			row(tw, "CLUSTER", "ORPHANED KIND", "NAMESPACE", "NAME")
			header = true
		}
		for _, r := range o.Objects {
			kind := r.Kind
			if r.Group != "" {
				kind = r.Group + "/" + r.Kind
			}
			row(tw, cv.Cluster, kind, r.Namespace, r.Name)
		}
		if more := o.Count - len(o.Objects); more > 0 {
			row(tw, cv.Cluster, fmt.Sprintf("(%d more)", more), "-", "-")
		}
		if o.Error != "" {
			row(tw, cv.Cluster, "(error)", "-", oneLine(o.Error))
		}
	}
}

// historyTable prints history entries, each followed by the hooks its
// operation ran (result and message columns).
func historyTable(tw *tabwriter.Writer, items []api.HistoryEntry) {
	row(tw, "ID", "CLUSTER", "REVISION", "FINISHED", "DURATION", "BY", "RESULT", "MESSAGE")
	for _, h := range items {
		row(tw, fmt.Sprint(h.ID), h.Cluster, shortRev(h.Revision), h.FinishedAt.UTC().Format(time.RFC3339),
			h.FinishedAt.Sub(h.StartedAt).Round(time.Millisecond).String(), orDash(h.InitiatedBy), h.Result, orDash(oneLine(h.Message)))
		for _, k := range h.Hooks {
			name := orDash(k.Name)
			if k.Deleted {
				name += " (deleted)"
			}
			row(tw, "", "", "", "", "", "", k.Status, fmt.Sprintf("%s hook %s %s", k.Phase, k.Kind, name))
		}
	}
}

// hookRows lists the hooks of each cluster's last operation.
func hookRows(tw *tabwriter.Writer, clusters []api.AppClusterView) {
	header := false
	for _, cv := range clusters {
		if cv.LastOperation == nil {
			continue
		}
		for _, h := range cv.LastOperation.Hooks {
			if !header {
				row(tw, "")
				row(tw, "CLUSTER", "HOOK PHASE", "KIND", "NAMESPACE", "NAME", "STATUS", "MESSAGE")
				header = true
			}
			name := orDash(h.Name)
			if h.Deleted {
				name += " (deleted)"
			}
			row(tw, cv.Cluster, h.Phase, h.Kind, orDash(h.Namespace), name, h.Status, orDash(oneLine(h.Message)))
		}
	}
}

func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
