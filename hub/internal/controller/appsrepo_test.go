//go:build !unit

package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// When the apps repo is also the apps' source repo (one repo holding the
// definitions and the manifests), the definitions are loaded once per
// commit, not again on every other pass, and loading them does not remove
// the checkouts the apps' renders use (an app pinned to an older commit of
// the same repo keeps its checkout; a render writing one is not cut short).
func TestAppsRepoAlsoSource(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"c1": {"env": "prod"}})
	c0 := w.push(map[string]string{"src/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {v: \"0\"}\n"})
	def := func(name, rev string) string {
		return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: %s}
spec:
  source: {repoURL: %s, targetRevision: %s, path: src}
  destination:
    namespace: %s
    clusterSelector: {matchLabels: {env: prod}}
  syncPolicy: {automated: {}}
`, name, w.repo.URL, rev, name)
	}
	c1 := w.push(map[string]string{
		"src/cm.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {v: \"1\"}\n",
		"defs/now.yaml":    def("now", "main"),
		"defs/pinned.yaml": def("pinned", c0),
	})
	w.c = New(Options{AppsRepo: w.repo.URL, AppsPath: "defs", AppsRevision: "main", Resync: time.Hour}, w.git, w.r, w.fl, w.st, hclog.NewNullLogger())
	snap := w.c.ReconcileNow(t.Context())
	got := map[string]string{}
	for _, a := range snap.Apps {
		got[a.Name] = a.Revision
		for _, tg := range a.Targets {
			if tg.Error != "" {
				t.Errorf("%s on %s: %s", a.Name, tg.Cluster, tg.Error)
			}
		}
	}
	if got["now"] != c1 || got["pinned"] != c0 {
		t.Fatalf("revisions %v; want now at %s, pinned at %s", got, c1, c0)
	}
	// A pass with nothing new has nothing pending: the definitions of c1
	// are not loaded again.
	for i := range 3 {
		if n := w.c.reconcile(t.Context()); n != 0 {
			t.Fatalf("pass %d after the settled one: %d pending", i+1, n)
		}
	}
	// Both commits' checkouts are in use and kept.
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(w.appsDir), "state", "checkouts", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			have[filepath.Base(m)] = true
		}
	}
	if !have[c0] || !have[c1] {
		t.Errorf("checkouts %v; want %s and %s kept", have, c0[:8], c1[:8])
	}
}
