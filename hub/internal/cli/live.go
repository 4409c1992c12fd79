package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// kindAliases maps what people type before the slash (kubectl's short
// names) to group and kind.
var kindAliases = map[string][2]string{
	"pod": {"", "Pod"}, "pods": {"", "Pod"}, "po": {"", "Pod"},
	"deploy": {"apps", "Deployment"}, "deployment": {"apps", "Deployment"}, "deployments": {"apps", "Deployment"},
	"sts": {"apps", "StatefulSet"}, "statefulset": {"apps", "StatefulSet"}, "statefulsets": {"apps", "StatefulSet"},
	"ds": {"apps", "DaemonSet"}, "daemonset": {"apps", "DaemonSet"}, "daemonsets": {"apps", "DaemonSet"},
	"rs": {"apps", "ReplicaSet"}, "replicaset": {"apps", "ReplicaSet"}, "replicasets": {"apps", "ReplicaSet"},
	"cj": {"batch", "CronJob"}, "cronjob": {"batch", "CronJob"}, "cronjobs": {"batch", "CronJob"},
	"job": {"batch", "Job"}, "jobs": {"batch", "Job"},
	"svc": {"", "Service"}, "service": {"", "Service"}, "services": {"", "Service"},
	"cm": {"", "ConfigMap"}, "configmap": {"", "ConfigMap"}, "configmaps": {"", "ConfigMap"},
	"secret": {"", "Secret"}, "secrets": {"", "Secret"},
}

// parseObject reads KIND/NAME (kubectl's short kinds, or Kind.group/NAME)
// or a bare NAME, which is a Pod.
func parseObject(s, namespace string) (api.ObjectRef, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		return api.ObjectRef{Kind: "Pod", Name: s, Namespace: namespace}, nil
	}
	if name == "" || kind == "" {
		return api.ObjectRef{}, usageError{fmt.Sprintf("object %q: want KIND/NAME (deploy/web, pod/web-1) or a pod name", s)}
	}
	if gk, ok := kindAliases[strings.ToLower(kind)]; ok {
		return api.ObjectRef{Group: gk[0], Kind: gk[1], Name: name, Namespace: namespace}, nil
	}
	k, group, _ := strings.Cut(kind, ".")
	return api.ObjectRef{Group: group, Kind: k, Name: name, Namespace: namespace}, nil
}

func objectQuery(q url.Values, o api.ObjectRef) {
	for k, v := range map[string]string{"group": o.Group, "kind": o.Kind, "namespace": o.Namespace, "name": o.Name} {
		if v != "" {
			q.Set(k, v)
		}
	}
}

// resources prints the app's live resource tree on each cluster.
func resources(ctx context.Context, c *client, name string, f flags, w io.Writer) error {
	q := appPath(name, "/resources")
	if f.cluster != "" {
		q += "?cluster=" + url.QueryEscape(f.cluster)
	}
	var rr api.ResourcesResponse
	if err := c.do(ctx, "GET", q, nil, &rr); err != nil {
		return err
	}
	return printOut(w, f.out, rr, func(tw *tabwriter.Writer) {
		for _, t := range rr.Clusters {
			fmt.Fprintf(tw, "=== %s\n", t.Cluster)
			if t.Error != "" {
				fmt.Fprintf(tw, "no resource tree: %s\n", t.Error)
				continue
			}
			row(tw, "KIND", "NAMESPACE", "NAME", "HEALTH", "MESSAGE")
			for _, n := range treeOrder(t.Nodes) {
				indent := strings.Repeat("  ", n.depth)
				if n.depth > 0 {
					indent = strings.Repeat("  ", n.depth-1) + "└─"
				}
				row(tw, indent+n.Kind, orDash(n.Namespace), n.Name, n.Health, orDash(n.Message))
			}
		}
	})
}

type orderedNode struct {
	api.ResourceNode
	depth int
}

// treeOrder lists nodes depth first: each of the app's objects followed
// by what it owns.
func treeOrder(nodes []api.ResourceNode) []orderedNode {
	children := map[string][]api.ResourceNode{}
	var roots []api.ResourceNode
	for _, n := range nodes {
		if len(n.Parents) == 0 {
			roots = append(roots, n)
			continue
		}
		children[n.Parents[0]] = append(children[n.Parents[0]], n)
	}
	var out []orderedNode
	seen := map[string]bool{}
	var walk func(n api.ResourceNode, depth int)
	walk = func(n api.ResourceNode, depth int) {
		out = append(out, orderedNode{n, depth})
		if n.UID == "" || seen[n.UID] {
			return
		}
		seen[n.UID] = true
		kids := children[n.UID]
		sort.SliceStable(kids, func(i, j int) bool { return kids[i].Kind+"/"+kids[i].Name < kids[j].Kind+"/"+kids[j].Name })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return out
}

// manifests prints what the hub rendered for the app.
func manifests(ctx context.Context, c *client, name string, f flags, w io.Writer) error {
	q := appPath(name, "/manifests")
	if f.cluster != "" {
		q += "?cluster=" + url.QueryEscape(f.cluster)
	}
	var mr api.RenderedManifestsResponse
	if err := c.do(ctx, "GET", q, nil, &mr); err != nil {
		return err
	}
	return printOut(w, f.out, mr, func(tw *tabwriter.Writer) {
		for _, cm := range mr.Clusters {
			fmt.Fprintf(tw, "# cluster %s, revision %s, %d objects\n", cm.Cluster, orDash(shortRev(cm.Revision)), len(cm.Objects))
			if cm.Error != "" {
				fmt.Fprintf(tw, "# error: %s\n", cm.Error)
			}
			for _, o := range cm.Objects {
				// YAML, as the objects are written in git (the API's JSON
				// comes indented for its place in the answer).
				y, err := yaml.JSONToYAML(o)
				if err != nil {
					y = append(o, '\n')
				}
				fmt.Fprintf(tw, "---\n%s", y)
			}
		}
	})
}

// events prints the Kubernetes events of the app's tree, or of one object
// (args[0]) and what it owns.
func appEvents(ctx context.Context, c *client, name string, args []string, f flags, w io.Writer) error {
	q := url.Values{}
	if f.cluster != "" {
		q.Set("cluster", f.cluster)
	}
	if len(args) > 0 {
		o, err := parseObject(args[0], f.namespace)
		if err != nil {
			return err
		}
		objectQuery(q, o)
	}
	var er api.AppEventsResponse
	if err := c.do(ctx, "GET", appPath(name, "/live/events")+"?"+q.Encode(), nil, &er); err != nil {
		return err
	}
	return printOut(w, f.out, er, func(tw *tabwriter.Writer) {
		row(tw, "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
		for _, e := range er.Events {
			seen := "-"
			if e.LastSeen != nil {
				seen = e.LastSeen.Format("2006-01-02T15:04:05Z07:00")
			}
			row(tw, seen, e.Type, e.Reason, e.Object.Kind+"/"+e.Object.Name, e.Message)
		}
	})
}

// action asks the app's agent to restart, delete or run an object.
func action(ctx context.Context, c *client, name string, args []string, f flags, w io.Writer) error {
	if len(args) != 2 {
		return usageError{"app action APP needs restart deploy/NAME, delete pod/NAME or run-cronjob cronjob/NAME"}
	}
	verbs := map[string]string{"restart": api.ActionRestart, "delete": api.ActionDelete, "run-cronjob": api.ActionRun, "run": api.ActionRun}
	act, ok := verbs[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("unknown action %q: restart, delete or run-cronjob", args[0])}
	}
	o, err := parseObject(args[1], f.namespace)
	if err != nil {
		return err
	}
	var ar api.ActionResponse
	if err := c.do(ctx, "POST", appPath(name, "/actions"), api.ActionRequest{Cluster: f.cluster, Action: act, Object: o}, &ar); err != nil {
		return err
	}
	return printOut(w, f.out, ar, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "%s: %s\n", ar.Cluster, ar.Message)
	})
}

// logs copies a pod's log to w: `flotilla logs APP [POD|deploy/NAME]`; -f
// follows it until interrupted.
func logsCmd(ctx context.Context, c *client, args []string, f flags, e env) error {
	if err := need(args, 1, "app name"); err != nil {
		return err
	}
	q := url.Values{}
	if f.cluster != "" {
		q.Set("cluster", f.cluster)
	}
	if len(args) > 1 {
		o, err := parseObject(args[1], f.namespace)
		if err != nil {
			return err
		}
		objectQuery(q, o)
	}
	if f.container != "" {
		q.Set("container", f.container)
	}
	if f.tail >= 0 {
		q.Set("tail", strconv.Itoa(f.tail))
	}
	if f.since > 0 {
		q.Set("since", f.since.String())
	}
	if f.follow {
		q.Set("follow", "true")
	}
	sc := *c
	sc.http = &http.Client{Transport: c.http.Transport} // a log may stream for long
	resp, err := sc.send(ctx, "GET", appPath(args[0], "/logs")+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if pod := resp.Header.Get(api.LogPodHeader); pod != "" && len(args) > 1 && !strings.Contains(strings.ToLower(args[1]), "pod/") && strings.Contains(args[1], "/") {
		fmt.Fprintf(e.stderr, "Showing the log of pod %s, container %s\n", pod, resp.Header.Get(api.LogContainerHeader))
	}
	if _, err := io.Copy(e.stdout, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("log of %s: %w", args[0], err)
	}
	return nil
}
