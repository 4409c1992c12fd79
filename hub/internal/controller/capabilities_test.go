//go:build !unit

package controller

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// capsChart is a chart that branches on the cluster's API versions and
// shows the Kubernetes version it was rendered for.
var capsChart = map[string]string{
	"chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
	"chart/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data:
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  widgets: {{ .Capabilities.APIVersions.Has "example.com/v1/Widget" | quote }}
`,
	"plain/cm.yaml": cmV1,
}

// capabilitySets are three distinct capability sets.
var capabilitySets = []struct {
	kube string
	apis []string
}{
	{"v1.31.0", []string{"v1", "v1/ConfigMap", "example.com/v1", "example.com/v1/Widget"}},
	{"v1.31.0", []string{"v1", "v1/ConfigMap"}},
	{"v1.30.4", []string{"v1", "v1/ConfigMap"}},
}

// TestHelmRendersOncePerCapabilitySet: many clusters with three distinct
// capability sets cost three renders of a chart, each cluster gets the
// render of its own set, and a plain directory renders once for all.
func TestHelmRendersOncePerCapabilitySet(t *testing.T) {
	const clusters = 60
	labels := map[string]map[string]string{}
	for i := range clusters {
		labels[fmt.Sprintf("c%02d", i)] = map[string]string{"env": "prod"}
	}
	w := newWorld(t, labels)
	w.push(capsChart)
	w.app("web", appYAML(w.repo.URL, "chart", "env: prod"))
	ctx := t.Context()
	for i := range clusters {
		s := capabilitySets[i%len(capabilitySets)]
		if err := w.c.SetCapabilities(ctx, fmt.Sprintf("c%02d", i), s.kube, s.apis); err != nil {
			t.Fatal(err)
		}
	}
	w.c.ReconcileNow(ctx)
	if got := w.r.Stats().Renders; got != 3 {
		t.Errorf("renders = %d, want 3 (one per capability set)", got)
	}
	digests := map[string]bool{}
	for i := range clusters {
		name := fmt.Sprintf("c%02d", i)
		ts := w.target("web", name)
		if ts.Error != "" || ts.Digest == "" {
			t.Fatalf("cluster %s: error %q digest %q", name, ts.Error, ts.Digest)
		}
		digests[ts.Digest] = true
		data := configMapData(t, w.fl, name)
		s := capabilitySets[i%len(capabilitySets)]
		want := map[string]any{"kube": s.kube, "widgets": fmt.Sprint(len(s.apis) == 4)}
		if diff := cmp.Diff(want, data); diff != "" {
			t.Fatalf("cluster %s: rendered data (-want +got):\n%s", name, diff)
		}
	}
	if len(digests) != 3 {
		t.Errorf("%d distinct bundles, want 3", len(digests))
	}

	// A plain directory does not depend on capabilities: one render more.
	w.app("web", appYAML(w.repo.URL, "plain", "env: prod"))
	w.c.ReconcileNow(ctx)
	if got := w.r.Stats().Renders; got != 4 {
		t.Errorf("renders = %d after switching to a plain directory, want 4", got)
	}
}

// TestHelmWaitsForCapabilities: a chart is not rendered for a cluster that
// has not reported its capabilities (the app says so); a plain directory
// is; once the cluster reports, the chart renders. The reported set
// survives a restart of the controller (kept in the store).
func TestHelmWaitsForCapabilities(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.push(capsChart)
	w.app("web", appYAML(w.repo.URL, "chart", "env: prod"))
	plain := strings.Replace(appYAML(w.repo.URL, "plain", "env: prod"), "name: web", "name: plain", 1)
	w.app("plain", strings.Replace(plain, "namespace: web", "namespace: plain", 1))
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	if want := "waiting for cluster a to report its API versions"; !strings.Contains(ts.Error, want) || ts.Digest != "" {
		t.Fatalf("before the cluster reported: error %q digest %q, want an error saying %q and no bundle", ts.Error, ts.Digest, want)
	}
	if p := w.target("plain", "a"); p.Error != "" || p.Digest == "" {
		t.Fatalf("plain directory: error %q digest %q, want a bundle without waiting", p.Error, p.Digest)
	}

	if err := w.c.SetCapabilities(ctx, "a", "v1.29.3", []string{"v1", "v1/ConfigMap"}); err != nil {
		t.Fatal(err)
	}
	w.c.ReconcileNow(ctx)
	if ts := w.target("web", "a"); ts.Error != "" || ts.Digest == "" {
		t.Fatalf("after the cluster reported: error %q digest %q", ts.Error, ts.Digest)
	}
	if got := configMapData(t, w.fl, "a")["kube"]; got != "v1.29.3" {
		t.Fatalf("rendered for Kubernetes %v, want v1.29.3", got)
	}
	if snapKube(w.c.Snapshot(), "a") != "v1.29.3" {
		t.Errorf("snapshot does not show the cluster's version: %+v", w.c.Snapshot().Clusters)
	}

	// A new controller on the same store (a hub restart) renders at once.
	fl := fleet.New()
	c2 := New(Options{AppsDir: w.appsDir}, w.git, w.r, fl, w.st, hclog.NewNullLogger())
	c2.ReconcileNow(ctx)
	for _, a := range c2.Snapshot().Apps {
		for _, t2 := range a.Targets {
			if t2.Error != "" {
				t.Fatalf("after restart: app %s on %s: %s", a.Name, t2.Cluster, t2.Error)
			}
		}
	}
	if got := configMapData(t, fl, "a")["kube"]; got != "v1.29.3" {
		t.Fatalf("after restart: rendered for Kubernetes %v, want v1.29.3", got)
	}
}

// TestHelmKubeVersionRefusedPerCluster: a chart's kubeVersion constraint
// is checked against each cluster's own version.
func TestHelmKubeVersionRefusedPerCluster(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"new": {"env": "prod"}, "old": {"env": "prod"}})
	files := map[string]string{}
	for k, v := range capsChart {
		files[k] = v
	}
	files["chart/Chart.yaml"] = "apiVersion: v2\nname: web\nversion: 0.1.0\nkubeVersion: \">=1.30.0-0\"\n"
	w.push(files)
	w.app("web", appYAML(w.repo.URL, "chart", "env: prod"))
	ctx := t.Context()
	for name, kube := range map[string]string{"new": "v1.31.1", "old": "v1.28.0"} {
		if err := w.c.SetCapabilities(ctx, name, kube, []string{"v1"}); err != nil {
			t.Fatal(err)
		}
	}
	w.c.ReconcileNow(ctx)
	if ts := w.target("web", "new"); ts.Error != "" || ts.Digest == "" {
		t.Fatalf("cluster new: error %q digest %q", ts.Error, ts.Digest)
	}
	ts := w.target("web", "old")
	if want := "chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.28.0"; !strings.Contains(ts.Error, want) || ts.Digest != "" {
		t.Fatalf("cluster old: error %q digest %q, want an error saying %q", ts.Error, ts.Digest, want)
	}
}

// TestSetCapabilitiesStoresOnlyChanges: an agent re-sending the same set
// (every reconnect) writes nothing; an invalid version is refused.
func TestSetCapabilitiesStoresOnlyChanges(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": nil})
	ctx := t.Context()
	if err := w.c.SetCapabilities(ctx, "a", "v1.31.0", []string{"v1", "apps/v1"}); err != nil {
		t.Fatal(err)
	}
	first, err := w.st.ListCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.c.SetCapabilities(ctx, "a", "v1.31.0", []string{"apps/v1", "v1", "v1"}); err != nil {
		t.Fatal(err)
	}
	again, err := w.st.ListCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again); diff != "" || len(first) != 1 {
		t.Errorf("the same set was stored again (-first +again):\n%s", diff)
	}
	if err := w.c.SetCapabilities(ctx, "a", "latest", nil); err == nil {
		t.Error("an invalid Kubernetes version was accepted")
	}
	_ = store.ClusterCapabilities(first[0])
}

func configMapData(t *testing.T, fl *fleet.Fleet, cluster string) map[string]any {
	t.Helper()
	b := fl.DesiredOf(cluster)["web"]
	objs, err := manifest.DecodeObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" {
			return o.Object["data"].(map[string]any)
		}
	}
	t.Fatalf("cluster %s: no ConfigMap in the bundle", cluster)
	return nil
}

func snapKube(s *Snapshot, cluster string) string {
	for _, c := range s.Clusters {
		if c.Name == cluster {
			return c.KubeVersion
		}
	}
	return ""
}

func manifestObjects(w *world, cluster string) ([]*unstructured.Unstructured, error) {
	return manifest.DecodeObjects(w.fl.DesiredOf(cluster)["web"])
}

// TestCapabilitySetsShared: clusters reporting the same set share one
// copy of it, and a set no cluster has any more is forgotten.
func TestCapabilitySetsShared(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": nil, "b": nil})
	ctx := t.Context()
	for _, name := range []string{"a", "b"} {
		if err := w.c.SetCapabilities(ctx, name, "v1.31.0", []string{"v1", "apps/v1"}); err != nil {
			t.Fatal(err)
		}
	}
	if w.c.capabilitiesOf("a") != w.c.capabilitiesOf("b") {
		t.Error("two clusters with one set hold two copies")
	}
	for _, name := range []string{"a", "b"} {
		if err := w.c.SetCapabilities(ctx, name, "v1.32.0", []string{"v1"}); err != nil {
			t.Fatal(err)
		}
	}
	w.c.mu.Lock()
	n := len(w.c.capSets)
	w.c.mu.Unlock()
	if n != 1 {
		t.Errorf("%d sets kept, want 1 (the old set is no cluster's)", n)
	}
}
