//go:build !unit

package conformance

import (
	"fmt"
	"strings"
	"time"

	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAppOfAppsRoot: Argo CD's app-of-apps as its documentation writes
// it. The root Application's destination is Argo CD's in-cluster server
// and its path holds child Applications (and an AppProject); each child
// deploys a ConfigMap to the cluster. The root is rendered on the hub and
// shown Synced with no cluster; the children are apps with the root as
// parent and reach the cluster; a child removed from the root's path is
// removed, its objects pruned.
func TestAppOfAppsRoot(t *testing.T) {
	c := NewCase(t, "root-app")
	child := func(name string) string {
		return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  namespace: argocd
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: platform
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination: {name: %s, namespace: %s}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
`, name, c.Repo.URL, name, ClusterName, name)
	}
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata: {from: child}\n"
	}
	project := "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: platform, namespace: argocd}\nspec:\n  sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n"
	rev := c.Commit(map[string]string{
		"apps/project.yaml":  project,
		"apps/children.yaml": child("root-app-a") + "---\n" + child("root-app-b"),
		"root-app-a/cm.yaml": cm("a"),
		"root-app-b/cm.yaml": cm("b"),
	})
	c.Define(fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  namespace: argocd
spec:
  project: default
  source:
    repoURL: %s
    targetRevision: main
    path: apps
  destination:
    server: https://kubernetes.default.svc
    namespace: argocd
  syncPolicy:
    automated: {prune: true, selfHeal: true}
`, c.Name, c.Repo.URL))
	ctx := t.Context()
	for _, name := range []string{"root-app-a", "root-app-b"} {
		if err := c.S.Hub.WaitSynced(ctx, 3*time.Minute, name, rev, true, ClusterName); err != nil {
			t.Fatalf("child %s: %v", name, err)
		}
	}
	for ns, name := range map[string]string{"root-app-a": "a", "root-app-b": "b"} {
		if _, err := c.S.Kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("ConfigMap %s/%s of the child: %v", ns, name, err)
		}
	}
	root := c.App()
	if root.Sync != "Synced" || root.Health != "Healthy" || root.Revision != rev || len(root.Clusters) != 0 || root.Error != "" {
		t.Errorf("root app: %+v, want Synced and Healthy at %s with no cluster and no error", root, rev)
	}
	out, err := c.S.Hub.CLI(ctx, "app", "get", "root-app-a")
	if err != nil || !strings.Contains(out, "Parent:") || !strings.Contains(out, c.Name) {
		t.Errorf("app get root-app-a does not name its parent (%v):\n%s", err, out)
	}

	// The root's path loses child b: the app goes and its ConfigMap is pruned.
	rev = c.Commit(map[string]string{"apps/children.yaml": child("root-app-a")})
	c.Eventually(3*time.Minute, "child b removed with its objects", func() error {
		apps, err := c.S.Hub.Apps(ctx)
		if err != nil {
			return err
		}
		for _, a := range apps {
			if a.Name == "root-app-b" {
				return fmt.Errorf("app root-app-b still listed")
			}
		}
		_, err = c.S.Kube.CoreV1().ConfigMaps("root-app-b").Get(ctx, "b", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("ConfigMap root-app-b/b: %v", err)
		}
		return nil
	})
	if err := c.S.Hub.WaitSynced(ctx, 3*time.Minute, "root-app-a", rev, true, ClusterName); err != nil {
		t.Errorf("child a after the change: %v", err)
	}
}
