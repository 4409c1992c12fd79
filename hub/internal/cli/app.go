package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/httpapi"
)

type appFlags struct {
	out     string
	cluster string
	prune   bool
	timeout time.Duration
	health  bool
}

func appCmd(ctx context.Context, c *client, args []string, f appFlags, w, stderr io.Writer) error {
	if err := need(args, 1, "app subcommand (list, get, sync, wait)"); err != nil {
		return err
	}
	switch args[0] {
	case "list":
		var lr httpapi.ListResponse[httpapi.AppView]
		if err := listAll(ctx, c, "/api/v1/apps", &lr); err != nil {
			return err
		}
		return printOut(w, f.out, lr.Items, func(tw *tabwriter.Writer) { appTable(tw, lr.Items) })
	case "get":
		if err := need(args, 2, "app name"); err != nil {
			return err
		}
		var v httpapi.AppView
		if err := c.do(ctx, "GET", "/api/v1/apps/"+args[1], nil, &v); err != nil {
			return err
		}
		return printOut(w, f.out, v, func(tw *tabwriter.Writer) { appDetail(tw, v) })
	case "sync":
		if err := need(args, 2, "app name"); err != nil {
			return err
		}
		var sr httpapi.SyncResponse
		if err := c.do(ctx, "POST", "/api/v1/apps/"+args[1]+"/sync", httpapi.SyncRequest{Cluster: f.cluster, Prune: f.prune}, &sr); err != nil {
			return err
		}
		fmt.Fprintf(w, "Sync of %s sent to %v\n", args[1], sr.Sent)
		for cl, e := range sr.Failed {
			fmt.Fprintf(w, "  %s: %s\n", cl, e)
		}
		return nil
	case "wait":
		if err := need(args, 2, "app name"); err != nil {
			return err
		}
		return wait(ctx, c, args[1], f, w)
	}
	return usageError{fmt.Sprintf("unknown app subcommand %q", args[0])}
}

func appTable(tw *tabwriter.Writer, apps []httpapi.AppView) {
	row(tw, "APP", "CLUSTER", "SYNC", "HEALTH", "REVISION", "MESSAGE")
	for _, a := range apps {
		if len(a.Clusters) == 0 {
			row(tw, a.Name, "-", a.Sync, a.Health, shortRev(a.Revision), orDash(a.Error))
		}
		for _, cv := range a.Clusters {
			msg := cv.Error
			if msg == "" {
				msg = cv.Message
			}
			if msg == "" && !cv.Connected {
				msg = "agent not connected"
			}
			row(tw, a.Name, cv.Cluster, cv.Sync, cv.Health, shortRev(cv.Revision), orDash(oneLine(msg)))
		}
	}
}

func appDetail(tw *tabwriter.Writer, v httpapi.AppView) {
	row(tw, "Name:", v.Name)
	row(tw, "Defined in:", orDash(v.File))
	row(tw, "Revision:", orDash(v.Revision))
	row(tw, "Sync:", v.Sync)
	row(tw, "Health:", v.Health)
	if v.Error != "" {
		row(tw, "Error:", v.Error)
	}
	row(tw, "")
	row(tw, "CLUSTER", "KIND", "NAMESPACE", "NAME", "SYNC", "HEALTH", "MESSAGE")
	for _, cv := range v.Clusters {
		if cv.Error != "" {
			row(tw, cv.Cluster, "-", "-", "-", cv.Sync, cv.Health, oneLine(cv.Error))
		}
		for _, o := range cv.Objects {
			row(tw, cv.Cluster, o.GetKind(), orDash(o.GetNamespace()), o.GetName(), httpapi.SyncName(o.GetSync()), httpapi.HealthName(o.GetHealth()), orDash(oneLine(o.GetMessage())))
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

// wait polls the app until every targeted cluster (or --cluster) is Synced
// (and Healthy with --health), printing progress as it changes.
func wait(ctx context.Context, c *client, name string, f appFlags, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	last := ""
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		var v httpapi.AppView
		err := c.do(ctx, "GET", "/api/v1/apps/"+name, nil, &v)
		if err == nil {
			done, line := progress(v, f)
			if line != last {
				fmt.Fprintf(w, "%s %s\n", time.Now().Format("15:04:05"), line)
				last = line
			}
			if done {
				return nil
			}
		} else if ctx.Err() == nil {
			if ae, ok := err.(*APIError); ok && ae.Status == 404 {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("app %s: %w after %s (last: %s)", name, ErrTimeout, f.timeout, last)
		case <-t.C:
		}
	}
}

func progress(v httpapi.AppView, f appFlags) (bool, string) {
	done, n, total := true, 0, 0
	line := ""
	for _, cv := range v.Clusters {
		if f.cluster != "" && cv.Cluster != f.cluster {
			continue
		}
		total++
		ok := cv.Sync == "Synced" && (!f.health || cv.Health == "Healthy")
		if ok {
			n++
		} else {
			done = false
		}
		line += fmt.Sprintf(" %s=%s/%s", cv.Cluster, cv.Sync, cv.Health)
	}
	if total == 0 {
		return false, "no targeted cluster yet"
	}
	return done, fmt.Sprintf("%d/%d ready:%s", n, total, line)
}
