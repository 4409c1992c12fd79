//go:build !unit

package security

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// TestRenderKustomizeRemoteRefused replays finding 3 against a real hub:
// kustomizations whose generators and patches name http:// URLs (a server
// of the test's own that counts what it is asked) are refused before
// kustomize runs: the server gets no request, and each app shows an error
// naming the kustomization file and the field, saying remote loading is
// disabled. A file:// reference to a local repository (which kustomize
// would clone with git) is refused the same way.
func TestRenderKustomizeRemoteRefused(t *testing.T) {
	t.Parallel()
	lure, requests := countingServer(t)

	cases := map[string]struct{ kustomization, field string }{
		"cm-files":    {"configMapGenerator:\n- name: fetched\n  files: [" + lure.URL + "/x]\n", "configMapGenerator[0].files"},
		"cm-keyed":    {"configMapGenerator:\n- name: fetched\n  files: [key=" + lure.URL + "/x]\n", "configMapGenerator[0].files"},
		"secret-envs": {"secretGenerator:\n- name: fetched\n  envs: [" + lure.URL + "/env]\n", "secretGenerator[0].envs"},
		"psm":         {"resources: [cm.yaml]\npatchesStrategicMerge: [" + lure.URL + "/patch]\n", "patchesStrategicMerge"},
		"resources":   {"resources: [" + lure.URL + "/all.yaml]\n", "resources"},
	}
	_, repo := gitRepo(t, "kz")
	files := map[string][]byte{}
	for name, c := range cases {
		files[name+"/kustomization.yaml"] = []byte(c.kustomization)
		files[name+"/cm.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\n")
	}
	h := hubWithKustomizations(t, repo, files, plainHTTPFlags()...)
	for name, c := range cases {
		// Wait for the refusal itself: before the repository answers the
		// app says it is waiting, which is not the outcome under test.
		waitAppErrors(t, h, name, name+"/kustomization.yaml", c.field, "remote loading is disabled")
		if n := requests.Load(); n != 0 {
			t.Fatalf("the hub sent %d requests to the URLs in the kustomizations, want none", n)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the hub sent %d requests to the URLs in the kustomizations, want none", n)
	}
}

// countingServer is a server of the attacker's: it answers every request
// with a ConfigMap and counts what it was asked.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	requests := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\ndata:\n  from: the network\n")
	}))
	t.Cleanup(srv.Close)
	return srv, requests
}

// hubWithKustomizations commits files (DIR/kustomization.yaml and what it
// uses) to repo and starts a hub with one Application per directory
// (namespace ns-DIR on the cluster "victim", which it adds).
func hubWithKustomizations(t *testing.T, repo *gitserver.Repo, files map[string][]byte, hubFlags ...string) *harness.Hub {
	t.Helper()
	if err := repo.Write(files); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("kustomizations"); err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	for f := range files {
		name, ok := strings.CutSuffix(f, "/kustomization.yaml")
		if !ok {
			continue
		}
		addApp(t, apps, name, application(name, repo.URL, name, "ns-"+name, "victim"))
	}
	h := startHub(t, apps, hubFlags...)
	if _, err := h.AddCluster(t.Context(), "victim"); err != nil {
		t.Fatal(err)
	}
	return h
}
