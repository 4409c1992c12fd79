//go:build !unit

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// A project that forbids ClusterRoleBinding and namespace kube-system, as
// a platform team writes it (Flotilla's own kind).
const teamProjectYAML = `apiVersion: flotilla.dev/v1alpha1
kind: Project
metadata: {name: team}
spec:
  sourceRepos: ['*']
  destinations: [{clusters: ['*'], namespace: '*'}, {clusters: ['*'], namespace: '!kube-system'}]
  clusterResourceWhitelist: [{group: '*', kind: '*'}]
  clusterResourceBlacklist: [{group: rbac.authorization.k8s.io, kind: ClusterRoleBinding}]
`

const crbManifest = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: team-admin}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: default, namespace: team}]\n"

// teamApp is an app of project (scope wide enough that only the project
// and the agent's policy limit it) deploying path to cluster.
func teamApp(name, project, repo, path, cluster string) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: %s}
spec:
  project: %s
  scope: {namespaces: ['*'], clusterScoped: true}
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination: {namespace: team, clusters: [%s]}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
`, name, project, repo, path, cluster)
}

func clusterError(a api.AppView, cluster string) string {
	for _, c := range a.Clusters {
		if c.Cluster == cluster {
			return c.Error
		}
	}
	return ""
}

// TestProjectsOnTheHub: with a real hub, git server and agent, an app of a
// project forbidding ClusterRoleBinding and namespace kube-system that
// renders either is refused on the hub with the rule and the object named,
// and nothing of it reaches the cluster; an app of the same project that
// keeps to it is Synced. An Argo CD AppProject with sourceRepos,
// destinations and a deny sync window converts and behaves the same way: a
// repo or namespace it does not allow is refused by name, and while the
// window is open the app's automated sync is held with the window named,
// until a person syncs (manualSync).
func TestProjectsOnTheHub(t *testing.T) {
	parallel(t)
	e := newEnv(t, "proj")
	rev := e.commit("team apps", map[string]string{
		"team/ok/cm.yaml":       configMap("ok", "v1"),
		"team/crb/cm.yaml":      configMap("crb", "v1"),
		"team/crb/crb.yaml":     crbManifest,
		"team/kube/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sneaky, namespace: kube-system}\ndata: {v: '1'}\n",
		"team/windowed/cm.yaml": configMap("windowed", "v1"),
	})
	e.writeApp("team", teamProjectYAML)
	e.writeApp("ok", teamApp("ok", "team", e.repo.URL, "team/ok", "proj"))
	e.writeApp("crb", teamApp("crb", "team", e.repo.URL, "team/crb", "proj"))
	e.writeApp("kube", teamApp("kube", "team", e.repo.URL, "team/kube", "proj"))
	e.startHub(hubDefaults())
	e.enroll("proj")
	e.waitSynced("ok", rev, "proj")

	for _, tc := range []struct{ app, want string }{
		{"crb", "rbac.authorization.k8s.io/ClusterRoleBinding /team-admin: project team: forbidden by project: cluster-scoped kind rbac.authorization.k8s.io/ClusterRoleBinding is in spec.clusterResourceBlacklist"},
		{"kube", "/ConfigMap kube-system/sneaky: project team: forbidden by project: namespace kube-system on cluster proj is denied by spec.destinations[1]"},
	} {
		e.waitApp(tc.app, "refused by its project", func(a api.AppView) error {
			if !strings.Contains(clusterError(a, "proj"), tc.want) {
				return fmt.Errorf("cluster error %q, want it to name %q", clusterError(a, "proj"), tc.want)
			}
			return nil
		})
	}
	ctx := t.Context()
	if _, err := e.clients["proj"].RbacV1().ClusterRoleBindings().Get(ctx, "team-admin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRoleBinding team-admin: %v, want it never created", err)
	}
	if _, err := e.clients["proj"].CoreV1().ConfigMaps("kube-system").Get(ctx, "sneaky", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap kube-system/sneaky: %v, want it never created", err)
	}

	// Argo CD's AppProject: sources only from this repo, destinations
	// cluster proj namespaces team*, and a deny window open all the time
	// ('* * * * *' for an hour) with manualSync.
	e.writeApp("argo-project", fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: argo-team, namespace: argocd}
spec:
  sourceRepos: [%q]
  destinations: [{name: proj, namespace: 'team*'}]
  syncWindows: [{kind: deny, schedule: '* * * * *', duration: 1h, applications: ['windowed'], manualSync: true}]
`, e.repo.URL))
	argoApp := func(name, repo, path, ns string) string {
		return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: argo-team
  source: {repoURL: %s, targetRevision: main, path: %s}
  destination: {name: proj, namespace: %s}
  syncPolicy: {automated: {prune: true, selfHeal: true}, syncOptions: [CreateNamespace=true]}
`, name, repo, path, ns)
	}
	e.writeApp("windowed", argoApp("windowed", e.repo.URL, "team/windowed", "team"))
	e.writeApp("elsewhere", argoApp("elsewhere", e.repo.URL, "team/ok", "default"))
	e.writeApp("other-repo", argoApp("other-repo", "http://git.invalid/other.git", "team/ok", "team"))
	e.cli("app", "refresh", "ok") // reconcile now rather than at the next resync

	e.waitApp("elsewhere", "refused: namespace default is not a destination", func(a api.AppView) error {
		if want := "project argo-team: forbidden by project: namespace default on cluster proj is not allowed by spec.destinations"; !strings.Contains(clusterError(a, "proj"), want) {
			return fmt.Errorf("cluster error %q, want %q", clusterError(a, "proj"), want)
		}
		return nil
	})
	e.waitApp("other-repo", "refused: repo not in sourceRepos", func(a api.AppView) error {
		if want := "project argo-team: forbidden by project: spec.source.repoURL http://git.invalid/other.git is not allowed by spec.sourceRepos"; !strings.Contains(a.Error, want) {
			return fmt.Errorf("error %q, want %q", a.Error, want)
		}
		return nil
	})
	held := e.waitApp("windowed", "held by the deny window", func(a api.AppView) error {
		for _, c := range a.Clusters {
			if c.Cluster == "proj" && strings.Contains(c.SyncWindow, "project argo-team: sync window spec.syncWindows[0] (deny * * * * * for 1h) denies syncs") && c.Digest != "" && c.ObservedDigest == c.Digest {
				return nil
			}
		}
		return fmt.Errorf("clusters %+v", a.Clusters)
	})
	if held.Project != "argo-team" {
		t.Errorf("windowed: project %q, want argo-team", held.Project)
	}
	if data, err := e.configMapData("proj", "team", "windowed"); err != nil || data != nil {
		t.Errorf("ConfigMap team/windowed = %v (%v); want nothing applied while the deny window holds automated sync", data, err)
	}
	e.cli("app", "sync", "windowed")
	e.eventually("a manual sync applies the app inside the deny window (manualSync)", func() error {
		data, err := e.configMapData("proj", "team", "windowed")
		if err != nil || data["version"] != "v1" {
			return fmt.Errorf("ConfigMap team/windowed = %v (%v)", data, err)
		}
		return nil
	})
}

// TestAgentPolicyHoldsWithoutTheHub: a hub with project enforcement
// switched off sends an app with a ClusterRoleBinding; the agent, whose
// own policy (a ConfigMap in its namespace) denies that kind, refuses the
// whole bundle with a status naming the object and the rule, and nothing
// of it is created. Relaxing the ConfigMap takes effect without a restart.
func TestAgentPolicyHoldsWithoutTheHub(t *testing.T) {
	parallel(t)
	e := newEnv(t, "guarded")
	ctx := t.Context()
	cs := e.clients["guarded"]
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flotilla-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	policyCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "flotilla-agent-policy", Namespace: "flotilla-system"},
		Data: map[string]string{"denyKinds": "rbac.authorization.k8s.io/ClusterRoleBinding", "namespaces": "team*"}}
	if _, err := cs.CoreV1().ConfigMaps("flotilla-system").Create(ctx, policyCM, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rev := e.commit("team app", map[string]string{"team/crb/cm.yaml": configMap("crb", "v1"), "team/crb/crb.yaml": crbManifest})
	e.writeApp("team", teamProjectYAML) // would refuse it, were projects enforced
	e.writeApp("crb", teamApp("crb", "team", e.repo.URL, "team/crb", "guarded"))
	e.startHub(harness.HubOptions{Extra: []string{"--enforce-projects=false"}})
	j, err := e.hub.AddCluster(ctx, "guarded")
	if err != nil {
		t.Fatal(err)
	}
	a, err := harness.StartAgent(binDir, e.dir, e.clusters["guarded"].Kubeconfig(), j, "--policy-configmap", "flotilla-agent-policy")
	if err != nil {
		t.Fatal(err)
	}
	e.agents["guarded"] = a
	t.Cleanup(a.Stop)

	want := "rbac.authorization.k8s.io/ClusterRoleBinding /team-admin: refused by the cluster's policy: kind rbac.authorization.k8s.io/ClusterRoleBinding is denied by ConfigMap flotilla-system/flotilla-agent-policy denyKinds"
	e.waitApp("crb", "refused by the agent", func(a api.AppView) error {
		for _, c := range a.Clusters {
			if c.Error != "" {
				return fmt.Errorf("the hub refused it (%s); projects should be off", c.Error)
			}
			if c.Cluster == "guarded" && strings.Contains(c.Message, want) {
				return nil
			}
		}
		return fmt.Errorf("clusters %+v", a.Clusters)
	})
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "team-admin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRoleBinding team-admin: %v, want it never created", err)
	}
	if data, err := e.configMapData("guarded", "team", "crb"); err != nil || data != nil {
		t.Errorf("ConfigMap team/crb = %v (%v); want nothing of the refused bundle applied", data, err)
	}

	policyCM.Data = map[string]string{"namespaces": "team*"}
	if _, err := cs.CoreV1().ConfigMaps("flotilla-system").Update(ctx, policyCM, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSynced("crb", rev, "guarded")
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(context.WithoutCancel(ctx), "team-admin", metav1.GetOptions{}); err != nil {
		t.Errorf("after the policy allowed it: %v", err)
	}
}

// TestSyncWindowHoldsManualSyncAndRollback: a deny sync window without
// manualSync holds a person's sync and rollback too. Through the real HTTP
// API both answer 409 naming the window, the CLI says the same, nothing is
// pinned and the cluster keeps what it had. Once the window allows manual
// syncs (manualSync), the same rollback goes through.
func TestSyncWindowHoldsManualSyncAndRollback(t *testing.T) {
	parallel(t)
	e := newEnv(t, "win")
	rev1 := e.commit("v1", map[string]string{"team/frozen/cm.yaml": configMap("frozen", "v1")})
	project := func(windows string) string {
		return `apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: frozen-team, namespace: argocd}
spec:
  sourceRepos: ['*']
  destinations: [{name: win, namespace: 'team'}]
` + windows
	}
	e.writeApp("frozen-team", project(""))
	e.writeApp("frozen", fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: frozen, namespace: argocd}
spec:
  project: frozen-team
  source: {repoURL: %s, targetRevision: main, path: team/frozen}
  destination: {name: win, namespace: team}
  syncPolicy: {automated: {prune: true, selfHeal: true}, syncOptions: [CreateNamespace=true]}
`, e.repo.URL))
	e.startHub(hubDefaults())
	e.enroll("win")
	e.waitSynced("frozen", rev1, "win")
	rev2 := e.commit("v2", map[string]string{"team/frozen/cm.yaml": configMap("frozen", "v2")})
	e.waitSynced("frozen", rev2, "win")

	e.writeApp("frozen-team", project("  syncWindows: [{kind: deny, schedule: '* * * * *', duration: 1h, applications: ['*']}]\n"))
	e.cli("app", "refresh", "frozen")
	window := "project frozen-team: sync window spec.syncWindows[0] (deny * * * * * for 1h) denies syncs until"
	e.waitApp("frozen", "held by the deny window, manual syncs too", func(a api.AppView) error {
		for _, c := range a.Clusters {
			if c.Cluster == "win" && strings.Contains(c.SyncWindow, window) && strings.Contains(c.SyncWindow, "manual syncs are held too") {
				return nil
			}
		}
		return fmt.Errorf("clusters %+v", a.Clusters)
	})

	for _, call := range []struct {
		path string
		body any
		cli  []string
	}{
		{"/api/v1/apps/frozen/sync", api.SyncRequest{}, []string{"app", "sync", "frozen"}},
		{"/api/v1/apps/frozen/rollback", api.RollbackRequest{Revision: rev1}, []string{"app", "rollback", "frozen", rev1}},
	} {
		var answer api.Error
		if err := json.Unmarshal(e.postRaw(e.hub.Token, call.path, call.body, http.StatusConflict), &answer); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(answer.Error, window) || !strings.Contains(answer.Error, "cluster win") {
			t.Errorf("POST %s: 409 %q does not name the window and the cluster", call.path, answer.Error)
		}
		_, err := e.hub.CLI(t.Context(), call.cli...)
		if err == nil || !strings.Contains(err.Error(), window) {
			t.Errorf("flotilla %s: %v; want a failure naming the window", strings.Join(call.cli, " "), err)
		}
	}
	if a, err := e.hub.App(t.Context(), "frozen"); err != nil || len(a.Clusters) != 1 || a.Clusters[0].Pinned != "" {
		t.Errorf("app frozen after the refused rollback: %+v (%v); want nothing pinned", a, err)
	}
	if data, err := e.configMapData("win", "team", "frozen"); err != nil || data["version"] != "v2" {
		t.Errorf("ConfigMap team/frozen = %v (%v); want v2 kept", data, err)
	}

	e.writeApp("frozen-team", project("  syncWindows: [{kind: deny, schedule: '* * * * *', duration: 1h, applications: ['*'], manualSync: true}]\n"))
	e.cli("app", "refresh", "frozen")
	e.waitApp("frozen", "the window allows manual syncs", func(a api.AppView) error {
		for _, c := range a.Clusters {
			if c.Cluster == "win" && strings.Contains(c.SyncWindow, "manual syncs are allowed (manualSync)") {
				return nil
			}
		}
		return fmt.Errorf("clusters %+v", a.Clusters)
	})
	e.cli("app", "rollback", "frozen", rev1)
	e.eventually("the rollback allowed by manualSync applies v1", func() error {
		data, err := e.configMapData("win", "team", "frozen")
		if err != nil || data["version"] != "v1" {
			return fmt.Errorf("ConfigMap team/frozen = %v (%v)", data, err)
		}
		return nil
	})
}
