//go:build !unit

package conformance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubectl runs the real kubectl (built by make bins) against the suite's
// cluster, with extra environment.
func kubectl(t *testing.T, s *Suite, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(controlPlaneBins, "kubectl"), append([]string{"--kubeconfig", s.Cluster.Kubeconfig()}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKubectlChangesReverted: what people do with kubectl to objects an
// app owns is reverted by self-heal and the app stays Synced: `kubectl
// patch` of a Service port (a list keyed by port, where a plain apply would
// leave two ports the API server refuses), and `kubectl edit` renaming a
// container (a list keyed by name). A field removed from git on an object
// first created with `kubectl apply` disappears from the cluster.
func TestKubectlChangesReverted(t *testing.T) {
	c := NewCase(t, "kubectl-owned")
	ctx := t.Context()
	// Created by a person with kubectl apply before the app took it over.
	kubectl(t, c.S, nil, "create", "namespace", c.Namespace)
	settings := filepath.Join(t.TempDir(), "settings.yaml")
	if err := os.WriteFile(settings, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: "+c.Namespace+"}\ndata: {keep: '1', drop: '2'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, c.S, nil, "apply", "-f", settings)

	files := map[string]string{
		"app/svc.yaml":      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n",
		"app/web.yaml":      WebDeployment("", true),
		"app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {keep: '1', drop: '2'}\n",
	}
	rev := c.Commit(files)
	c.Define(c.ArgoApplication("app", ""))
	c.WaitSynced(rev, true)

	kubectl(t, c.S, nil, "-n", c.Namespace, "patch", "service", "web", "--type=json", "-p", `[{"op":"replace","path":"/spec/ports/0/port","value":8081}]`)
	out := kubectl(t, c.S, []string{`KUBE_EDITOR=sed -i -e s/^\ \ \ \ \ \ \ \ name:\ web$/\ \ \ \ \ \ \ \ name:\ renamed/`}, "-n", c.Namespace, "edit", "deployment", "web")
	if !strings.Contains(out, "edited") {
		t.Fatalf("kubectl edit changed nothing: %s", out)
	}
	c.Eventually(time.Minute, "the Service port and the container name are put back", func() error {
		svc, err := c.S.Kube.CoreV1().Services(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
			return fmt.Errorf("service ports %+v", svc.Spec.Ports)
		}
		d, err := c.S.Kube.AppsV1().Deployments(c.Namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cs := d.Spec.Template.Spec.Containers; len(cs) != 1 || cs[0].Name != "web" {
			return fmt.Errorf("%d containers, first %s", len(cs), cs[0].Name)
		}
		return nil
	})
	c.WaitSynced(rev, true)

	files["app/settings.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {keep: '1'}\n"
	rev = c.Commit(files)
	c.WaitSynced(rev, true)
	cm, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data["drop"]; ok || cm.Data["keep"] != "1" {
		t.Errorf("data %v after drop was removed from git, want only keep", cm.Data)
	}
}
