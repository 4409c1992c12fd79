//go:build !unit

package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// TestAppOfApps: Argo CD's app-of-apps. The root app's render holds two
// Argo CD Applications and a ConfigMap: the Applications become apps of the
// hub with the root as parent, the cluster gets only the ConfigMap from the
// root, a child removed from the root's render is removed, the root
// removed takes its children with it, and a child named like an app of the
// definitions folder is an error on the child, the folder's app untouched.
func TestAppOfApps(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	child := func(name string) string {
		return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination: {name: a, namespace: %s}
  syncPolicy: {automated: {prune: true}}
`, name, w.repo.URL, name, name)
	}
	cm := func(name string) string { return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n" }
	w.push(map[string]string{
		"root/apps.yaml":  child("child-a") + "---\n" + child("child-b") + "---\n" + cm("root-cm"),
		"child-a/cm.yaml": cm("a"), "child-b/cm.yaml": cm("b"), "web/cm.yaml": cmV1,
	})
	w.app("root", strings.NewReplacer("{name: web}", "{name: root}", "path: web", "path: root").Replace(appYAML(w.repo.URL, "web", "env: prod")))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	w.c.ReconcileNow(ctx) // the children found by the first pass are defined by the second

	parents := map[string]string{}
	for _, as := range w.c.Snapshot().Apps {
		parents[as.Name] = as.Parent
	}
	if parents["child-a"] != "root" || parents["child-b"] != "root" {
		t.Fatalf("apps and parents %v, want child-a and child-b with parent root", parents)
	}
	if d := w.fl.DesiredOf("a")["child-a"]; d.GetDigest() == "" {
		t.Fatal("child-a has no bundle for cluster a")
	}
	objs, err := manifest.DecodeObjects(w.fl.DesiredOf("a")["root"])
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetKind() != "ConfigMap" {
		t.Errorf("root's bundle holds %d objects (%v), want only its ConfigMap", len(objs), objs)
	}

	// child-b leaves the root's render; a child named like a folder app.
	w.app("web", appYAML(w.repo.URL, "web", "env: prod"))
	w.push(map[string]string{"root/apps.yaml": child("child-a") + "---\n" + child("web") + "---\n" + cm("root-cm")})
	pollOnce(t, w, w.repo.URL)
	w.c.ReconcileNow(ctx)
	w.c.ReconcileNow(ctx)
	if _, ok := w.fl.DesiredOf("a")["child-b"]; ok {
		t.Error("child-b is still desired after leaving its parent's render")
	}
	snap := w.c.Snapshot()
	var clash bool
	for _, b := range snap.Broken {
		clash = clash || (b.Name == "web" && strings.Contains(b.Error, "already defined"))
	}
	if !clash {
		t.Errorf("no error on the child named web: %+v", snap.Broken)
	}
	for _, as := range snap.Apps {
		if as.Name == "web" && (as.Parent != "" || as.Error != "") {
			t.Errorf("the folder's app web was changed by the clashing child: %+v", as)
		}
	}

	// The root goes: so do its children.
	if err := os.Remove(filepath.Join(w.appsDir, "root.yaml")); err != nil {
		t.Fatal(err)
	}
	w.c.ReconcileNow(ctx)
	w.c.ReconcileNow(ctx)
	for _, name := range []string{"root", "child-a"} {
		if _, ok := w.fl.DesiredOf("a")[name]; ok {
			t.Errorf("%s still desired after the root was removed", name)
		}
	}
}

// TestAppOfAppsHubRoot: the root of Argo CD's app-of-apps, as Argo CD's
// documentation writes it: destination Argo CD's in-cluster server,
// rendering Applications and an AppProject. The root renders on the hub;
// its children become apps of the AppProject's project targeting cluster a; no cluster gets anything
// of the root. A root that also renders a ConfigMap has an error naming it,
// and its children are defined all the same.
func TestAppOfAppsHubRoot(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	child := func(name string) string {
		return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: team
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination: {name: a, namespace: %s}
`, name, w.repo.URL, name, name)
	}
	root := func(name, path string) string {
		return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: default
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination: {server: https://kubernetes.default.svc, namespace: argocd}
  syncPolicy: {automated: {prune: true, selfHeal: true}}
`, name, w.repo.URL, path)
	}
	project := "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: team, namespace: argocd}\nspec: {sourceRepos: ['*'], destinations: [{name: a, namespace: '*'}]}\n"
	cm := func(name string) string { return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n" }
	w.push(map[string]string{
		"apps/children.yaml": child("child-a") + "---\n" + child("child-b") + "---\n" + project,
		"mixed/apps.yaml":    child("child-c") + "---\n" + cm("stray"),
		"child-a/cm.yaml":    cm("a"), "child-b/cm.yaml": cm("b"), "child-c/cm.yaml": cm("c"),
	})
	w.app("root", root("root", "apps"))
	w.app("mixed", root("mixed", "mixed"))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	w.c.ReconcileNow(ctx) // the children found by the first pass are defined by the second

	states := map[string]AppState{}
	for _, as := range w.c.Snapshot().Apps {
		states[as.Name] = as
	}
	for _, name := range []string{"child-a", "child-b", "child-c"} {
		if states[name].Parent == "" {
			t.Errorf("%s not defined by a root: %+v", name, states[name])
		}
		if w.fl.DesiredOf("a")[name].GetDigest() == "" {
			t.Errorf("%s has no bundle for cluster a", name)
		}
	}
	r := states["root"]
	if !r.Hub || r.Revision == "" || r.Error != "" || len(r.Targets) != 0 {
		t.Errorf("root: %+v, want a rendered hub app with no error and no targets", r)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("root warnings %q, want none (its AppProject defines project team)", r.Warnings)
	}
	if m := states["mixed"]; !strings.Contains(m.Error, "ConfigMap") || !strings.Contains(m.Error, "stray") || !strings.Contains(m.Error, "spec.destination") {
		t.Errorf("mixed root error %q, want one naming ConfigMap stray and spec.destination", m.Error)
	}
	for _, name := range []string{"root", "mixed"} {
		if _, ok := w.fl.DesiredOf("a")[name]; ok {
			t.Errorf("the hub app %s was sent to cluster a", name)
		}
	}
}
