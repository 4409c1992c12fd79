package project

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

func mustCompile(t *testing.T, p *app.Project) *Policy {
	t.Helper()
	if err := app.ValidateProject(p); err != nil {
		t.Fatal(err)
	}
	c, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// team is a project that forbids ClusterRoleBinding and namespace
// kube-system, allows namespaces team-* on prod clusters (by label) and
// on cluster dev, and sources from one git host.
func team(t *testing.T) *Policy {
	return mustCompile(t, &app.Project{Name: "team", File: "p.yaml", Spec: app.ProjectSpec{
		SourceRepos: []string{"https://git.example.com/team/*", "!https://git.example.com/team/secret*"},
		Destinations: []app.ProjectDestination{
			{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, Namespace: "team-*"},
			{Clusters: []string{"dev"}, Namespace: "*"},
			{Clusters: []string{"*"}, Namespace: "!kube-system"},
			{Clusters: []string{"!banned"}},
		},
		ClusterResourceWhitelist:   []app.GroupKind{{Group: "", Kind: "Namespace"}, {Group: "rbac.authorization.k8s.io", Kind: "*"}},
		ClusterResourceBlacklist:   []app.GroupKind{{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}},
		NamespaceResourceBlacklist: []app.GroupKind{{Group: "", Kind: "ResourceQuota"}},
	}})
}

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if ns != "" {
		o.SetNamespace(ns)
	}
	return o
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckObjects(t *testing.T) {
	p := team(t)
	prod := app.Cluster{Name: "eu-1", Labels: map[string]string{"env": "prod"}}
	dev := app.Cluster{Name: "dev"}
	tests := []struct {
		name    string
		cluster app.Cluster
		objs    []*unstructured.Unstructured
		want    string // "" or a substring of the error
	}{
		{"namespaced in an allowed namespace", prod, []*unstructured.Unstructured{obj("apps/v1", "Deployment", "team-a", "web")}, ""},
		{"default namespace from the app", prod, []*unstructured.Unstructured{obj("v1", "ConfigMap", "", "cm")}, ""},
		{"namespace not allowed on prod", prod, []*unstructured.Unstructured{obj("v1", "ConfigMap", "other", "cm")}, "/ConfigMap other/cm: project team: forbidden by project: namespace other on cluster eu-1 is not allowed by spec.destinations"},
		{"kube-system denied everywhere", dev, []*unstructured.Unstructured{obj("v1", "ConfigMap", "kube-system", "cm")}, "namespace kube-system on cluster dev is denied by spec.destinations[2]"},
		{"ClusterRoleBinding blacklisted", dev, []*unstructured.Unstructured{obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "admin")}, "rbac.authorization.k8s.io/ClusterRoleBinding /admin: project team: forbidden by project: cluster-scoped kind rbac.authorization.k8s.io/ClusterRoleBinding is in spec.clusterResourceBlacklist"},
		{"ClusterRole whitelisted", dev, []*unstructured.Unstructured{obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "view")}, ""},
		{"cluster-scoped kind not whitelisted", dev, []*unstructured.Unstructured{obj("storage.k8s.io/v1", "StorageClass", "", "fast")}, "storage.k8s.io/StorageClass is not in spec.clusterResourceWhitelist"},
		{"namespaced kind blacklisted", dev, []*unstructured.Unstructured{obj("v1", "ResourceQuota", "team-a", "q")}, "kind ResourceQuota is in spec.namespaceResourceBlacklist"},
		{"cluster-scoped custom kind from a CRD of the render", dev, []*unstructured.Unstructured{
			{Object: map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": map[string]any{"name": "widgets.example.com"},
				"spec": map[string]any{"group": "example.com", "scope": "Cluster", "names": map[string]any{"kind": "Widget"}}}},
		}, "apiextensions.k8s.io/CustomResourceDefinition is not in spec.clusterResourceWhitelist"},
		{"cluster denied", app.Cluster{Name: "banned"}, []*unstructured.Unstructured{obj("v1", "ConfigMap", "team-a", "cm")}, "cluster banned is denied by spec.destinations[3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckObjects(tt.cluster, "team-a", tt.objs)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && !strings.Contains(errString(err), tt.want):
				t.Fatalf("error %q, want it to contain %q", errString(err), tt.want)
			case tt.want != "" && !errors.Is(err, ErrForbidden):
				t.Fatalf("error %v does not wrap ErrForbidden", err)
			}
		})
	}
}

func TestCheckSources(t *testing.T) {
	p := team(t)
	tests := []struct{ repo, want string }{
		{"https://git.example.com/team/app.git", ""},
		{"https://git.example.com/other/app.git", "project team: forbidden by project: spec.source.repoURL https://git.example.com/other/app.git is not allowed by spec.sourceRepos"},
		{"https://git.example.com/team/secrets.git", "project team: forbidden by project: spec.source.repoURL https://git.example.com/team/secrets.git is denied by spec.sourceRepos"},
	}
	for _, tt := range tests {
		a := &app.Application{Name: "a", Spec: app.Spec{Source: app.Source{RepoURL: tt.repo}}}
		if diff := cmp.Diff(tt.want, errString(p.CheckSources(a))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.repo, diff)
		}
	}
	if err := AllowAll("default").CheckSources(&app.Application{Spec: app.Spec{Source: app.Source{RepoURL: "x"}}}); err != nil {
		t.Errorf("the implicit default project refused: %v", err)
	}
	if err := p.CheckHub(); err == nil {
		t.Errorf("a project without a hub destination allowed the hub")
	}
}

func TestSyncWindows(t *testing.T) {
	p := mustCompile(t, &app.Project{Name: "team", Spec: app.ProjectSpec{SyncWindows: []app.SyncWindow{
		// Nights: no syncs at all for app web; manual syncs allowed.
		{Kind: "deny", Schedule: "0 22 * * *", Duration: "8h", Applications: []string{"web"}, ManualSync: true},
		// Apps in namespace batch sync only on the hour, for 10 minutes.
		{Kind: "allow", Schedule: "0 * * * *", Duration: "10m", Namespaces: []string{"batch"}},
		// Cluster frozen is frozen (no manual sync) on Mondays.
		{Kind: "deny", Schedule: "0 0 * * 1", Duration: "24h", Clusters: []string{"frozen"}},
	}}})
	day := func(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, time.UTC) } // a Tuesday
	monday := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name              string
		app, ns, cluster  string
		now               time.Time
		automated, manual bool
		reason            string
		next              time.Time
	}{
		{"web by day", "web", "web", "c", day(12, 0), true, true, "", day(22, 0)},
		{"web at night", "web", "web", "c", day(23, 0), false, true, "project team: sync window spec.syncWindows[0] (deny 0 22 * * * for 8h) denies syncs until 2026-12-02T06:00:00Z; manual syncs are allowed (manualSync)", time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)},
		{"web just after the night", "web", "web", "c", day(6, 0), true, true, "", day(22, 0)},
		{"batch in its allow window", "job", "batch", "c", day(12, 5), true, true, "", day(12, 10)},
		{"batch outside", "job", "batch", "c", day(12, 30), false, false, "project team: outside every allow sync window (spec.syncWindows[1] allow 0 * * * * for 10m) until 2026-12-01T13:00:00Z; manual syncs are held too (manualSync is not set)", day(13, 0)},
		{"frozen on Monday", "api", "api", "frozen", monday, false, false, "project team: sync window spec.syncWindows[2] (deny 0 0 * * 1 for 24h) denies syncs until 2026-12-01T00:00:00Z; manual syncs are held too (manualSync is not set)", day(0, 0)},
		{"other app untouched", "api", "api", "c", day(23, 0), true, true, "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.SyncWindows(tt.app, tt.ns, tt.cluster, tt.now)
			want := Windows{Automated: tt.automated, Manual: tt.manual, Reason: tt.reason, Next: tt.next}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
