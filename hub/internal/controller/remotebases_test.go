//go:build !unit

package controller

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

func kzResources(entries ...string) string {
	s := "resources:\n"
	for _, e := range entries {
		s += fmt.Sprintf("- %q\n", e)
	}
	return s
}

// TestKustomizeRemoteBases: an app's kustomization (in one repository of
// a real git server over HTTP) is built from two folders of a second
// repository, one pinned by tag, one following its main branch. Off, the
// app has an error naming the kustomization, the entry and the option, and
// nothing is sent. On, the hub fetches the second repository through its
// own mirror and renders; a commit on the branch rolls out after the
// repository's poll, while the tagged folder stays as tagged; moving the
// tag rolls that out too.
func TestKustomizeRemoteBases(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	ctx := t.Context()
	lib := w.newRepo("lib")
	pushTo(t, lib, map[string]string{
		"base/kustomization.yaml":  "resources: [cm.yaml]\n",
		"base/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata: {from: tag-v1}\n",
		"extra/kustomization.yaml": "resources: [cm.yaml]\n",
		"extra/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {from: main-1}\n",
	})
	if err := lib.TagAndPush("v1.2.0"); err != nil {
		t.Fatal(err)
	}
	tagged := lib.URL + "//base?ref=v1.2.0"
	branch := "git::" + lib.URL + "//extra?ref=main"
	w.push(map[string]string{"overlay/kustomization.yaml": "namePrefix: prod-\n" + kzResources(tagged, branch)})
	w.app("web", appYAML(w.repo.URL, "overlay", "env: prod"))

	w.c.ReconcileNow(ctx)
	ts := w.target("web", "a")
	t.Log(ts.Error)
	for _, want := range []string{"overlay/kustomization.yaml: resources: " + fmt.Sprintf("%q", tagged), "--kustomize-remote-bases"} {
		if !strings.Contains(ts.Error, want) {
			t.Errorf("remote bases off: target error %q does not say %q", ts.Error, want)
		}
	}
	if b := w.fl.DesiredOf("a")["web"]; b != nil {
		t.Errorf("remote bases off: a bundle was sent: %v", b.GetDigest())
	}

	w.c.opts.KustomizeRemoteBases = true
	w.c.ReconcileNow(ctx)
	want := map[string]string{"prod-base": "from=tag-v1", "prod-extra": "from=main-1"}
	if got := configMaps(t, w, "a"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("remote bases on: %v (target %+v), want %v", got, w.target("web", "a"), want)
	}
	if got := w.c.RemoteBaseRepos("web"); fmt.Sprint(got) != fmt.Sprint([]string{lib.URL}) {
		t.Errorf("RemoteBaseRepos = %v, want [%s]", got, lib.URL)
	}

	// A commit on lib's main: the branch base rolls out, the tag does not.
	pushTo(t, lib, map[string]string{
		"base/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata: {from: main-2}\n",
		"extra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {from: main-2}\n",
	})
	pollOnce(t, w, lib.URL)
	w.c.ReconcileNow(ctx)
	want = map[string]string{"prod-base": "from=tag-v1", "prod-extra": "from=main-2"}
	if got := configMaps(t, w, "a"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a commit on lib's main: %v, want %v", got, want)
	}

	// The tag moved to that commit: it rolls out too.
	if err := lib.TagAndPush("v1.2.0"); err != nil {
		t.Fatal(err)
	}
	pollOnce(t, w, lib.URL)
	w.c.ReconcileNow(ctx)
	want = map[string]string{"prod-base": "from=main-2", "prod-extra": "from=main-2"}
	if got := configMaps(t, w, "a"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the tag moved: %v, want %v", got, want)
	}
	if ts := w.target("web", "a"); ts.Error != "" {
		t.Errorf("target error %q", ts.Error)
	}
}

// TestKustomizeRemoteBaseLoop: two repositories whose kustomizations are
// each built from the other's main branch. The hub fetches both, finds
// the loop and reports it on the app, naming the entries; nothing is sent.
func TestKustomizeRemoteBaseLoop(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.c.opts.KustomizeRemoteBases = true
	other := w.newRepo("other")
	pushTo(t, other, map[string]string{"kustomization.yaml": kzResources(w.repo.URL + "//app?ref=main")})
	w.push(map[string]string{"app/kustomization.yaml": kzResources(other.URL + "?ref=main")})
	w.app("web", appYAML(w.repo.URL, "app", "env: prod"))
	w.c.ReconcileNow(t.Context())
	ts := w.target("web", "a")
	t.Log(ts.Error)
	for _, want := range []string{"app/kustomization.yaml: resources: " + fmt.Sprintf("%q", other.URL+"?ref=main"), "a loop", render.ErrRemoteBase.Error()} {
		if !strings.Contains(ts.Error, want) {
			t.Errorf("target error %q does not say %q", ts.Error, want)
		}
	}
	if b := w.fl.DesiredOf("a")["web"]; b != nil {
		t.Errorf("a bundle was sent: %v", b.GetDigest())
	}
}

// TestKustomizeRemoteBaseCredentials: the hub's git host (HTTPS, basic
// auth) has a credential template. A remote base in a second repository
// of that host is fetched with it. A remote base on another host, which
// no template names, is fetched anonymously: that host never sees the
// first host's token, and the app's error names the kustomization, the
// entry and the refusal.
func TestKustomizeRemoteBaseCredentials(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := gitserver.StartTLS(filepath.Join(dir, "git"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	const token = "s3cret-token-of-the-git-host"
	srv.RequireBasicAuth("ci", token)
	repo, err := srv.NewRepo("config", filepath.Join(dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := srv.NewRepo("lib", filepath.Join(dir, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	// The test's own pushes authenticate as the hub's template does.
	for _, r := range []*gitserver.Repo{repo, lib} {
		u := strings.Replace(r.URL, "https://", "https://ci:"+token+"@", 1)
		if err := gitCmd(r.Work, "remote", "set-url", "origin", u); err != nil {
			t.Fatal(err)
		}
	}
	pushTo(t, lib, map[string]string{"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lib}\ndata: {from: lib}\n"})

	var (
		mu   sync.Mutex
		seen []string
	)
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="other"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	}))
	t.Cleanup(other.Close)

	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	host := strings.TrimSuffix(repo.URL, "config.git")
	w.git = gitsource.New(gitsource.Options{
		Dir: filepath.Join(dir, "state"), PollInterval: time.Hour, CAFile: srv.CAFile(),
		Credentials: []gitsource.Credential{{URL: host, Username: "ci", TokenFile: tokenFile}},
	}, hclog.NewNullLogger())
	w.c = New(Options{AppsDir: w.appsDir, Resync: time.Hour, KustomizeRemoteBases: true}, w.git, w.r, w.fl, w.st, hclog.NewNullLogger())
	w.repo = repo

	evil := other.URL + "/org/evil.git//x?ref=main"
	w.push(map[string]string{
		"good/kustomization.yaml": kzResources(lib.URL + "//base?ref=main"),
		"bad/kustomization.yaml":  kzResources(evil),
	})
	w.app("web", appYAML(repo.URL, "good", "env: prod"))
	w.c.ReconcileNow(t.Context())
	if got := configMaps(t, w, "a"); fmt.Sprint(got) != "map[lib:from=lib]" {
		t.Fatalf("a remote base of the same host: %v (target %+v), want lib from=lib", got, w.target("web", "a"))
	}

	w.app("web", appYAML(repo.URL, "bad", "env: prod"))
	w.c.ReconcileNow(t.Context())
	ts := w.target("web", "a")
	t.Log(ts.Error)
	for _, want := range []string{"bad/kustomization.yaml: resources: " + fmt.Sprintf("%q", evil), render.ErrRemoteBase.Error(), "authentication required"} {
		if !strings.Contains(ts.Error, want) {
			t.Errorf("target error %q does not say %q", ts.Error, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the other host was never asked: the premise fails")
	}
	for _, auth := range seen {
		if auth != "" {
			t.Errorf("the other host was sent credentials: %q", auth)
		}
	}
}

func gitCmd(dir string, args ...string) error {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %v: %w: %s", args, err, out)
	}
	return nil
}

// TestKustomizeRemoteBaseProject: the app's project allows its own
// repository only. A remote base in another repository is refused naming
// the kustomization, the entry and spec.sourceRepos, and the hub never
// fetches that repository.
func TestKustomizeRemoteBaseProject(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.c.opts.KustomizeRemoteBases = true
	lib := w.newRepo("lib")
	pushTo(t, lib, map[string]string{"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lib}\n"})
	entry := lib.URL + "?ref=main"
	w.push(map[string]string{"app/kustomization.yaml": kzResources(entry)})
	w.app("team", strings.Replace(teamProject, "sourceRepos: ['*']", "sourceRepos: ['"+w.repo.URL+"']", 1))
	w.app("web", inProject(appYAML(w.repo.URL, "app", "env: prod"), "team"))
	w.c.ReconcileNow(t.Context())
	ts := w.target("web", "a")
	t.Log(ts.Error)
	for _, want := range []string{"app/kustomization.yaml: resources: " + fmt.Sprintf("%q", entry), "repository " + lib.URL + " is not allowed by spec.sourceRepos"} {
		if !strings.Contains(ts.Error, want) {
			t.Errorf("target error %q does not say %q", ts.Error, want)
		}
	}
	for _, r := range w.git.Repos() {
		if r == lib.URL {
			t.Errorf("the hub tracks %s, which the project does not allow", r)
		}
	}
}
