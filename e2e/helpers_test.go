//go:build !unit

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// waitTimeout bounds every wait of the scenarios: generous for a loaded
// 2-core machine, far above what a healthy run needs.
const waitTimeout = 90 * time.Second

// kubectl runs the real kubectl against cluster with its kubeconfig.
func (e *env) kubectl(clusterName string, args ...string) string {
	e.t.Helper()
	cmd := exec.CommandContext(e.t.Context(), filepath.Join(controlPlaneBins, "kubectl"), append([]string{"--kubeconfig", e.clusters[clusterName].Kubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("kubectl %s on %s: %v: %s", strings.Join(args, " "), clusterName, err, out)
	}
	return string(out)
}

// cli runs the flotilla CLI and fails the test on error.
func (e *env) cli(args ...string) string {
	e.t.Helper()
	out, err := e.hub.CLI(e.t.Context(), args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// eventually waits for cond with the suite's deadline and fails the test
// with what was last seen.
func (e *env) eventually(what string, cond func() error) {
	e.t.Helper()
	if err := harness.Eventually(e.t.Context(), waitTimeout, 100*time.Millisecond, cond); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// waitApp waits until cond holds for app as `flotilla app get -o json`
// shows it, and returns that view.
func (e *env) waitApp(name, what string, cond func(api.AppView) error) api.AppView {
	e.t.Helper()
	var last api.AppView
	e.eventually(fmt.Sprintf("app %s: %s", name, what), func() error {
		a, err := e.hub.App(e.t.Context(), name)
		if err != nil {
			return err
		}
		last = a
		return cond(a)
	})
	return last
}

// waitSynced waits until app is Synced and Healthy at revision (any when
// "") on each of clusters.
func (e *env) waitSynced(app, revision string, clusters ...string) {
	e.t.Helper()
	if err := e.hub.WaitSynced(e.t.Context(), waitTimeout, app, revision, true, clusters...); err != nil {
		e.t.Fatal(err)
	}
}

// configMapData returns the data of a ConfigMap, or nil when it does not
// exist.
func (e *env) configMapData(clusterName, ns, name string) (map[string]string, error) {
	cm, err := e.clients[clusterName].CoreV1().ConfigMaps(ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if cm.Data == nil {
		return map[string]string{}, nil
	}
	return cm.Data, nil
}

// waitGone waits until get reports NotFound.
func (e *env) waitGone(what string, get func(ctx context.Context) error) {
	e.t.Helper()
	e.eventually(what+" deleted", func() error {
		err := get(e.t.Context())
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%s still exists", what)
	})
}

// deploymentImage returns the first container image of a Deployment.
func (e *env) deploymentImage(clusterName, ns, name string) (string, error) {
	d, err := e.clients[clusterName].AppsV1().Deployments(ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return "", fmt.Errorf("deployment %s/%s has no container", ns, name)
	}
	return d.Spec.Template.Spec.Containers[0].Image, nil
}

// dumpClusters logs what runs on every cluster, as `kubectl get
// deploy,rs,svc,cm,pods -A` would show it (the control plane's own
// namespaces left out).
func (e *env) dumpClusters() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.t.Context()), 20*time.Second)
	defer cancel()
	names := make([]string, 0, len(e.clients))
	for n := range e.clients {
		names = append(names, n)
	}
	sort.Strings(names)
	skip := map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true}
	for _, n := range names {
		cs := e.clients[n]
		var b strings.Builder
		fmt.Fprintf(&b, "=== cluster %s ===\n", n)
		if ds, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); err != nil {
			fmt.Fprintf(&b, "deployments: %v\n", err)
		} else {
			for _, d := range ds.Items {
				if skip[d.Namespace] {
					continue
				}
				img := ""
				if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
					img = cs[0].Image
				}
				fmt.Fprintf(&b, "deployment %s/%s replicas=%v ready=%d available=%d image=%s\n", d.Namespace, d.Name, derefInt32(d.Spec.Replicas), d.Status.ReadyReplicas, d.Status.AvailableReplicas, img)
			}
		}
		if ss, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err == nil {
			for _, s := range ss.Items {
				if !skip[s.Namespace] && s.Namespace != "default" {
					fmt.Fprintf(&b, "service %s/%s %s\n", s.Namespace, s.Name, s.Spec.ClusterIP)
				}
			}
		}
		if cms, err := cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{}); err == nil {
			count := map[string]int{}
			for _, c := range cms.Items {
				if skip[c.Namespace] || c.Name == "kube-root-ca.crt" {
					continue
				}
				count[c.Namespace]++
				if count[c.Namespace] <= 10 {
					fmt.Fprintf(&b, "configmap %s/%s keys=%d\n", c.Namespace, c.Name, len(c.Data))
				}
			}
			for ns, c := range count {
				if c > 10 {
					fmt.Fprintf(&b, "configmaps in %s: %d in all\n", ns, c)
				}
			}
		}
		if ps, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
			phases := map[string]int{}
			for _, p := range ps.Items {
				if !skip[p.Namespace] {
					phases[p.Namespace+" "+string(p.Status.Phase)]++
				}
			}
			for k, v := range phases {
				fmt.Fprintf(&b, "pods %s: %d\n", k, v)
			}
		}
		e.t.Log(b.String())
	}
}

func derefInt32(p *int32) any {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// cmManifest is a ConfigMap manifest with data.
func cmManifest(name string, data map[string]string) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n", name)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, data[k])
	}
	return b.String()
}

// appSpec is an Application with a free-form destination and policy.
type appSpec struct {
	name, path, ns string
	clusters       []string
	selector       map[string]string
	prune          bool
	selfHeal       bool
}

func (a appSpec) yaml(repo string) string {
	var dest strings.Builder
	fmt.Fprintf(&dest, "    namespace: %s\n", a.ns)
	if len(a.clusters) > 0 {
		fmt.Fprintf(&dest, "    clusters: [%s]\n", strings.Join(a.clusters, ", "))
	}
	if len(a.selector) > 0 {
		dest.WriteString("    clusterSelector:\n      matchLabels:\n")
		keys := make([]string, 0, len(a.selector))
		for k := range a.selector {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&dest, "        %s: %s\n", k, a.selector[k])
		}
	}
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata:
  name: %s
spec:
  source:
    repoURL: %s
    targetRevision: main
    path: %s
  destination:
%s  syncPolicy:
    automated: {prune: %t, selfHeal: %t}
    syncOptions: [CreateNamespace=true]
`, a.name, repo, a.path, dest.String(), a.prune, a.selfHeal)
}

// getCluster is `flotilla cluster get NAME -o json`.
func getCluster(ctx context.Context, h *harness.Hub, name string) (api.ClusterView, error) {
	out, err := h.CLI(ctx, "cluster", "get", name, "-o", "json")
	if err != nil {
		return api.ClusterView{}, err
	}
	var cs api.ClusterView
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		return api.ClusterView{}, fmt.Errorf("cluster get output %q: %w", out, err)
	}
	return cs, nil
}

// waitConnected waits until hub h shows cluster name connected (or not).
func (e *env) waitConnected(h *harness.Hub, name string, connected bool) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("cluster %s connected=%t", name, connected), func() error {
		cs, err := getCluster(e.t.Context(), h, name)
		if err != nil {
			return err
		}
		if cs.Connected != connected {
			return fmt.Errorf("%+v", cs)
		}
		return nil
	})
}
