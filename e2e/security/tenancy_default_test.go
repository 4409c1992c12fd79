//go:build !unit

package security

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTenancyDefault replays the tenancy part of finding 6's note: an
// application whose destination is team-a put a ClusterRoleBinding to
// cluster-admin and a ConfigMap into team-b, and the hub sent both. Now an
// app may use only its destination namespace unless it opts in: the app is
// refused with an error naming each object and how to allow it, and
// nothing of it reaches the cluster, while an app in the same repository
// that stays in its namespace deploys. The same objects deploy once the
// app opts in (an Argo CD Application, through Flotilla's annotations).
func TestTenancyDefault(t *testing.T) {
	t.Parallel()
	_, repo := gitRepo(t, "tenancy")
	if err := repo.Write(map[string][]byte{
		"grab/crb.yaml": []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: team-a-owns-the-cluster
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: default, namespace: team-a}
`),
		"grab/cm.yaml":  []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n  namespace: team-b\ndata: {k: v}\n"),
		"grab/ns.yaml":  []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n"),
		"grab/own.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own\ndata: {k: v}\n"),
		"fine/cm.yaml":  []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata: {k: v}\n"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("tenancy"); err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	argoApp := func(name, path, annotations string) string {
		return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  annotations: {%s}
spec:
  project: default
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination: {name: victim, namespace: team-a}
  syncPolicy:
    automated: {prune: true}
    syncOptions: [CreateNamespace=true]
`, name, annotations, repo.URL, path)
	}
	addApp(t, apps, "grab", argoApp("grab", "grab", ""))
	addApp(t, apps, "fine", application("fine", repo.URL, "fine", "team-fine", "victim"))
	h := startHub(t, apps, plainHTTPFlags()...)
	kubeconfig := startCluster(t, "victim")
	startAgent(t, h, "victim", kubeconfig)
	cs := clientset(t, kubeconfig)

	if err := h.WaitSynced(t.Context(), 2*time.Minute, "fine", "", false, "victim"); err != nil {
		t.Fatalf("the app that stays in its namespace did not sync: %v\n%s", err, h.Tail(4000))
	}
	msg := waitAppErrors(t, h, "grab", "outside the app's scope",
		"ClusterRoleBinding", "team-a-owns-the-cluster", "cluster-scoped", "flotilla.dev/scope-cluster-scoped",
		"ConfigMap team-b/planted", "Namespace /team-b", "flotilla.dev/scope-namespaces")
	t.Logf("grab: %s", strings.TrimSpace(msg))
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(t.Context(), "team-a-owns-the-cluster", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRoleBinding team-a-owns-the-cluster: %v, want NotFound", err)
	}
	for _, ns := range []string{"team-a", "team-b"} {
		cms, err := cs.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		for _, cm := range cms.Items {
			if cm.Name == "planted" || cm.Name == "own" {
				t.Errorf("ConfigMap %s/%s reached the cluster", ns, cm.Name)
			}
		}
	}

	// The app opts in: the same objects deploy.
	addApp(t, apps, "grab", argoApp("grab", "grab", `flotilla.dev/scope-cluster-scoped: "true", flotilla.dev/scope-namespaces: team-b`))
	if err := h.WaitSynced(t.Context(), 2*time.Minute, "grab", "", false, "victim"); err != nil {
		t.Fatalf("the app that opted in did not sync: %v\n%s", err, h.Tail(4000))
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(t.Context(), "team-a-owns-the-cluster", metav1.GetOptions{}); err != nil {
		t.Errorf("ClusterRoleBinding after opting in: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("team-b").Get(t.Context(), "planted", metav1.GetOptions{}); err != nil {
		t.Errorf("ConfigMap team-b/planted after opting in: %v", err)
	}
}
