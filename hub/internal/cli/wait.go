package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// wait follows the hub's event stream and re-reads the app on every event
// until every targeted cluster (or --cluster) is Synced, and Healthy with
// --health, printing a line whenever the state changes. It returns
// ErrTimeout when --timeout passes first.
func wait(ctx context.Context, c *client, name string, f flags, e env) error {
	ctx, cancel := context.WithTimeoutCause(ctx, f.timeout, ErrTimeout)
	defer cancel()
	events, err := c.events(ctx)
	if err != nil {
		return err
	}
	last := ""
	for {
		var v api.AppView
		if err := c.do(ctx, "GET", appPath(name, ""), nil, &v); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		done, line := progress(v, f)
		if line != last {
			fmt.Fprintf(e.stdout, "%s %s\n", e.now().Format("15:04:05"), line)
			last = line
		}
		if done {
			return nil
		}
		if _, ok := <-events; !ok {
			break
		}
	}
	if errors.Is(context.Cause(ctx), ErrTimeout) {
		return fmt.Errorf("app %s: %w after %s (last: %s)", name, ErrTimeout, f.timeout, last)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("app %s: the hub closed its event stream", name)
}

// progress says whether the app is done and describes where it is.
func progress(v api.AppView, f flags) (bool, string) {
	done, n, total := true, 0, 0
	var parts []string
	for _, cv := range v.Clusters {
		if f.cluster != "" && cv.Cluster != f.cluster {
			continue
		}
		total++
		if cv.Sync == "Synced" && (!f.health || cv.Health == "Healthy") {
			n++
		} else {
			done = false
		}
		parts = append(parts, fmt.Sprintf("%s=%s/%s", cv.Cluster, cv.Sync, cv.Health))
	}
	if total == 0 {
		if f.cluster != "" {
			return false, fmt.Sprintf("%s does not target cluster %s yet", v.Name, f.cluster)
		}
		return false, v.Name + " targets no cluster yet"
	}
	return done, fmt.Sprintf("%d/%d ready: %s", n, total, strings.Join(parts, " "))
}
