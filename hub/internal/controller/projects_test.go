//go:build !unit

package controller

import (
	"strings"
	"testing"
	"time"
)

const teamProject = `apiVersion: flotilla.dev/v1alpha1
kind: Project
metadata: {name: team}
spec:
  sourceRepos: ['*']
  destinations: [{clusters: ['*'], namespace: '*'}, {clusters: ['*'], namespace: '!kube-system'}]
  clusterResourceWhitelist: [{group: '*', kind: '*'}]
  clusterResourceBlacklist: [{group: rbac.authorization.k8s.io, kind: ClusterRoleBinding}]
`

const crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: admin}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: default, namespace: web}]\n"

// inProject puts an app in project, with a scope wide enough (any
// namespace, cluster-scoped objects) that only the project limits it.
func inProject(yaml, project string) string {
	return strings.Replace(yaml, "spec:\n", "spec:\n  project: "+project+"\n  scope: {namespaces: ['*'], clusterScoped: true}\n", 1)
}

// TestProjectRefusesObjects: an app of a project that forbids
// ClusterRoleBinding and namespace kube-system renders either: the
// target's error names the object and the rule, and the app keeps its last
// good bundle; another app of the same commit is unaffected. With project
// enforcement off, the same render is sent.
func TestProjectRefusesObjects(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.push(map[string]string{"web/cm.yaml": cmV1, "api/cm.yaml": strings.ReplaceAll(cmV1, "{name: web}", "{name: api}")})
	w.app("team", teamProject)
	w.app("web", inProject(appYAML(w.repo.URL, "web", "env: prod"), "team"))
	w.app("api", inProject(strings.ReplaceAll(appYAML(w.repo.URL, "api", "env: prod"), "{name: web}", "{name: api}"), "team"))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	good := w.target("web", "a").Digest
	if good == "" || w.target("web", "a").Error != "" {
		t.Fatalf("web: %+v, want a bundle", w.target("web", "a"))
	}

	for _, tc := range []struct{ name, file, want string }{
		{"ClusterRoleBinding", crb, "rbac.authorization.k8s.io/ClusterRoleBinding /admin: project team: forbidden by project: cluster-scoped kind rbac.authorization.k8s.io/ClusterRoleBinding is in spec.clusterResourceBlacklist"},
		{"kube-system", strings.Replace(cmV2, "{name: web}", "{name: web, namespace: kube-system}", 1), "/ConfigMap kube-system/web: project team: forbidden by project: namespace kube-system on cluster a is denied by spec.destinations[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.push(map[string]string{"web/cm.yaml": cmV1, "web/extra.yaml": tc.file})
			pollOnce(t, w, w.repo.URL)
			w.c.ReconcileNow(ctx)
			ts := w.target("web", "a")
			if !strings.Contains(ts.Error, tc.want) {
				t.Errorf("web on a: error %q, want it to name %q", ts.Error, tc.want)
			}
			if ts.Digest != good || w.fl.DesiredOf("a")["web"].GetDigest() != good {
				t.Errorf("web on a: digest %q (desired %q), want its last good %q", ts.Digest, w.fl.DesiredOf("a")["web"].GetDigest(), good)
			}
			if api := w.target("api", "a"); api.Error != "" || api.Digest == "" {
				t.Errorf("api, same project and commit: %+v, want it unaffected", api)
			}
		})
	}

	w.c.opts.ProjectsOff = true
	w.c.ReconcileNow(ctx)
	if ts := w.target("web", "a"); ts.Error != "" || ts.Digest == good {
		t.Errorf("projects off: web on a %+v, want the new render sent", ts)
	}
}

// TestProjectMissing: an app naming a project nobody defined has an error
// saying so; the implicit default project allows everything.
func TestProjectMissing(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.push(map[string]string{"web/cm.yaml": cmV1 + "---\n" + crb})
	w.app("web", inProject(appYAML(w.repo.URL, "web", "env: prod"), "nope"))
	w.c.ReconcileNow(t.Context())
	var as AppState
	for _, a := range w.c.Snapshot().Apps {
		if a.Name == "web" {
			as = a
		}
	}
	if !strings.Contains(as.Error, "spec.project: project does not exist: project nope is not defined") {
		t.Errorf("error %q, want one saying project nope is not defined", as.Error)
	}
	if d := w.fl.DesiredOf("a")["web"].GetDigest(); d != "" {
		t.Errorf("web was sent (%s) although its project does not exist", d)
	}
	w.app("web", inProject(appYAML(w.repo.URL, "web", "env: prod"), "default"))
	w.c.ReconcileNow(t.Context())
	if ts := w.target("web", "a"); ts.Error != "" || ts.Digest == "" {
		t.Errorf("default project: %+v, want the app sent with its ClusterRoleBinding", ts)
	}
}

// TestSyncWindowHoldsAutomatedSync: while a deny window is open the app's
// bundle goes out with automated sync and self-heal off and the target
// says which window holds it; manual syncs are allowed (manualSync). Once
// the window closes the bundle is automated again.
func TestSyncWindowHoldsAutomatedSync(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.push(map[string]string{"web/cm.yaml": cmV1})
	w.app("team", teamProject+"  syncWindows: [{kind: deny, schedule: '0 22 * * *', duration: 2h, applications: [web], manualSync: true}]\n")
	w.app("web", inProject(appYAML(w.repo.URL, "web", "env: prod"), "team"))
	now := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	w.c.opts.Now = func() time.Time { return now }
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	b := w.fl.DesiredOf("a")["web"]
	if b.GetSyncPolicy().GetAutomated() || b.GetSyncPolicy().GetSelfHeal() {
		t.Errorf("in the deny window the bundle is automated: %v", b.GetSyncPolicy())
	}
	want := "project team: sync window spec.syncWindows[0] (deny 0 22 * * * for 2h) denies syncs until 2026-12-02T00:00:00Z; manual syncs are allowed (manualSync)"
	if ts.SyncWindow != want || ts.ManualSyncDenied {
		t.Errorf("target: window %q manual denied %t, want %q and manual allowed", ts.SyncWindow, ts.ManualSyncDenied, want)
	}
	now = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	w.c.ReconcileNow(ctx)
	if b := w.fl.DesiredOf("a")["web"]; !b.GetSyncPolicy().GetAutomated() || !b.GetSyncPolicy().GetSelfHeal() {
		t.Errorf("after the window the bundle is not automated: %v", b.GetSyncPolicy())
	}
	if ts := w.target("web", "a"); ts.SyncWindow != "" {
		t.Errorf("after the window: %q", ts.SyncWindow)
	}
}
