package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// rolloutCmd runs `flotilla rollout status|pause|resume|approve|abort|retry APP`.
func rolloutCmd(ctx context.Context, c *client, args []string, f flags, e env) error {
	if err := need(args, 1, "rollout subcommand (status, pause, resume, approve, abort, retry)"); err != nil {
		return err
	}
	if err := need(args, 2, "app name"); err != nil {
		return err
	}
	sub, name := args[0], args[1]
	var v api.RolloutView
	switch sub {
	case "status", "get":
		if err := c.do(ctx, "GET", appPath(name, "/rollout"), nil, &v); err != nil {
			return err
		}
	case "pause", "resume", "approve", "abort", "retry":
		if err := c.do(ctx, "POST", appPath(name, "/rollout/"+sub), nil, &v); err != nil {
			return err
		}
	default:
		return usageError{fmt.Sprintf("unknown rollout subcommand %q", sub)}
	}
	return printOut(e.stdout, f.out, v, func(tw *tabwriter.Writer) { rolloutTable(tw, v) })
}

func rolloutTable(tw *tabwriter.Writer, v api.RolloutView) {
	phase := v.Phase
	if v.Paused {
		phase += " (paused)"
	}
	fmt.Fprintf(tw, "App:\t%s\n", v.App)
	fmt.Fprintf(tw, "Revision:\t%s -> %s\n", shortRev(v.From), shortRev(v.To))
	fmt.Fprintf(tw, "Phase:\t%s\n", phase)
	if v.CurrentStep <= len(v.Steps) {
		fmt.Fprintf(tw, "Step:\t%d of %d\n", v.CurrentStep, len(v.Steps))
	}
	if v.Reason != "" {
		fmt.Fprintf(tw, "Reason:\t%s\n", v.Reason)
	}
	if v.RolledBack {
		fmt.Fprintf(tw, "Rolled back:\tthe reached clusters were returned to %s\n", shortRev(v.From))
	}
	if g := v.Gate; g != nil {
		res := "passed"
		if !g.OK {
			res = "failed"
		}
		fmt.Fprintf(tw, "Gate:\tstep %d %s: %s\n", g.Step, res, g.Detail)
	}
	fmt.Fprintln(tw)
	row(tw, "STEP", "NAME", "STATE", "CLUSTER", "REVISION", "SYNC", "HEALTH")
	for _, s := range v.Steps {
		name := s.Name
		var what []string
		if s.Soak != "" {
			what = append(what, "soak "+s.Soak)
		}
		if s.Approval {
			what = append(what, "approval")
		}
		if len(what) > 0 {
			name += " (" + strings.Join(what, ", ") + ")"
		}
		if len(s.Clusters) == 0 {
			row(tw, fmt.Sprint(s.Number), name, s.State, "-", "-", "-", "-")
		}
		for i, cl := range s.Clusters {
			num, n, st := fmt.Sprint(s.Number), name, s.State
			if i > 0 {
				num, n, st = "", "", ""
			}
			row(tw, num, n, st, cl.Cluster, shortRev(cl.Revision), cl.Sync, cl.Health)
		}
	}
}
