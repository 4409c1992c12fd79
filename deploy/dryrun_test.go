//go:build !unit

package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/deploy/internal/manifests"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
)

func binDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("FLOTILLA_E2E_BIN_DIR"); d != "" {
		return d
	}
	d, err := filepath.Abs(filepath.Join(repoRoot, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// kubectlBin returns the kubectl that `make bins` builds into the bin
// folder (the same Kubernetes version as the test API servers), failing
// the test when it is missing rather than skipping.
func kubectlBin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(binDir(t), "kubectl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kubectl: %v (build it with `make bins`)", err)
	}
	return p
}

// TestServerDryRun renders every installation and has a real kube-apiserver
// accept each object with `kubectl apply --dry-run=server`: schemas, RBAC
// escalation checks and admission run, nothing is stored. The namespaces the
// objects live in are created for real first, as an install would have them.
func TestServerDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	kubectlBin(t)
	all := renderAll(t)
	c := cluster.Start(t, &cluster.ProcessProvider{BinDir: binDir(t), WorkDir: t.TempDir()}, "deploy-dryrun")
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The harness must reject what is wrong, or its passes mean nothing.
	t.Run("control: an unknown field is rejected", func(t *testing.T) {
		bad := all["kustomize hub"]
		bad = []*unstructured.Unstructured{manifests.Find(bad, "Deployment", "flotilla-hub").DeepCopy()}
		if err := unstructured.SetNestedField(bad[0].Object, int64(1), "spec", "replicaz"); err != nil {
			t.Fatal(err)
		}
		out, err := runKubectl(t, yamlStream(t, bad), "--kubeconfig", c.Kubeconfig(), "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(out, "replicaz") {
			t.Errorf("kubectl accepted a Deployment with spec.replicaz (err %v):\n%s", err, out)
		}
	})
	for _, r := range renderings() {
		t.Run(r.name, func(t *testing.T) {
			objs := all[r.name]
			for _, ns := range manifests.Namespaces(objs) {
				_, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatalf("create namespace %s: %v", ns, err)
				}
			}
			out := kubectlApply(t, c.Kubeconfig(), objs, "--dry-run=server")
			accepted := map[string]bool{}
			for _, m := range dryRunLine.FindAllStringSubmatch(out, -1) {
				accepted[m[1]] = true
			}
			for _, o := range objs {
				if !accepted[objectLine(o)] {
					t.Errorf("%s %s/%s was not accepted; kubectl said:\n%s", o.GetKind(), o.GetNamespace(), o.GetName(), out)
				}
			}
		})
	}
}

// dryRunLine is a line of `kubectl apply --dry-run=server` for an accepted
// object.
var dryRunLine = regexp.MustCompile(`(?m)^(\S+) (?:created|configured|unchanged) \(server dry run\)$`)

// objectLine is how kubectl apply names an object in its output.
func objectLine(o *unstructured.Unstructured) string {
	gk := o.GroupVersionKind().GroupKind()
	kind := strings.ToLower(gk.Kind)
	if gk.Group != "" {
		kind += "." + gk.Group
	}
	return kind + "/" + o.GetName()
}

// kubectlApply runs kubectl apply -f - with the objects and extra flags and
// returns its output; a failure fails the test.
func kubectlApply(t *testing.T, kubeconfig string, objs []*unstructured.Unstructured, flags ...string) string {
	t.Helper()
	args := append([]string{"--kubeconfig", kubeconfig, "apply", "-f", "-"}, flags...)
	out, err := runKubectl(t, yamlStream(t, objs), args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args[2:], " "), err, out)
	}
	return out
}

func yamlStream(t *testing.T, objs []*unstructured.Unstructured) *bytes.Buffer {
	t.Helper()
	var in bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		in.WriteString("---\n")
		in.Write(y)
	}
	return &in
}

// runKubectl runs kubectl and returns its stdout and stderr together.
func runKubectl(t *testing.T, stdin *bytes.Buffer, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), kubectlBin(t), args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
