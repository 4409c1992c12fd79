//go:build !unit

package engines

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
)

// TestChecksInWorkers: the kustomization checks a hub without engines
// asks its render workers for (render.WorkerEngines) answer as the engines
// do in-process: the charts of helmCharts, and the remote bases, looked up
// in the hub (nested bases after their parent's checkout), a lookup's
// error coming back wrapped as the lookup returned it.
func TestChecksInWorkers(t *testing.T) {
	f := newRemoteFixture(t, map[string]string{
		"app/kustomization.yaml":  "namePrefix: prod-\nresources:\n- " + baseA + "\n- cm.yaml\n",
		"app/cm.yaml":             cmYAML("local"),
		"helm/kustomization.yaml": "helmCharts:\n- name: web\n  repo: https://charts.example.com\n  version: 1.0.0\n  releaseName: r\n",
	}, map[string]map[string]string{
		baseA: {"base/kustomization.yaml": res("cm.yaml", baseB), "base/cm.yaml": cmYAML("from-a")},
		baseB: {"x/kustomization.yaml": "resources: [cm.yaml]\n", "x/cm.yaml": cmYAML("from-b")},
	})
	e := render.WorkerEngines(testWorkers(t, filepath.Dir(f.repo), nil))

	charts, inflates, err := e.KustomizeCharts(f.repo, app.Source{Path: "helm"})
	want := []render.KustomizeChart{{Repo: "https://charts.example.com", Name: "web", Version: "1.0.0"}}
	if err != nil || !inflates || !cmp.Equal(want, charts) {
		t.Errorf("KustomizeCharts: %v, %v, %v; want %v, true", charts, inflates, err, want)
	}
	if _, inflates, err := e.KustomizeCharts(f.repo, app.Source{Path: "app"}); err != nil || inflates {
		t.Errorf("KustomizeCharts of a kustomization without helmCharts: %v, %v", inflates, err)
	}

	in := f.input("app")
	var looked []string
	lookup := func(b render.RemoteBase) (string, error) {
		looked = append(looked, b.RepoURL)
		return checkoutLookup(in.RemoteBases)(b)
	}
	bases, err := e.KustomizeRemoteBases(f.repo, app.Source{Path: "app"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	local, lerr := KustomizeRemoteBases(f.repo, app.Source{Path: "app"}, checkoutLookup(in.RemoteBases))
	if lerr != nil {
		t.Fatal(lerr)
	}
	if diff := cmp.Diff(local, bases); diff != "" || len(bases) != 2 {
		t.Errorf("remote bases in a worker (-in-process +worker):\n%s", diff)
	}
	if len(looked) != 2 {
		t.Errorf("looked up %v, want each base once", looked)
	}

	pending := errors.New("waiting for the repository")
	_, err = e.KustomizeRemoteBases(f.repo, app.Source{Path: "app"}, func(render.RemoteBase) (string, error) { return "", pending })
	_, lerr = KustomizeRemoteBases(f.repo, app.Source{Path: "app"}, func(render.RemoteBase) (string, error) { return "", pending })
	if !errors.Is(err, pending) || lerr == nil || err.Error() != lerr.Error() {
		t.Errorf("lookup error in a worker: %v; want %v, wrapping the lookup's error", err, lerr)
	}
	if !strings.Contains(err.Error(), "waiting for the repository") {
		t.Errorf("lookup error in a worker: %v, want the lookup's message", err)
	}
}
