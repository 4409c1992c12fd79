//go:build !unit

package security

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// Finding 2: the git token went to every repoURL host, over plain http too.
// An Application author points repoURLs at their own servers (plain http,
// https on another port of the same address, and a redirect from the
// token's own host); the token must reach only the https prefix it is
// configured for.
func TestGitTokenOnlyToItsPrefix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := gitserver.StartTLS(filepath.Join(dir, "git"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	repo, err := srv.NewRepo("private", filepath.Join(dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.CommitAndPush("init")
	if err != nil {
		t.Fatal(err)
	}
	const token = "tok-3f9a1c-must-not-leave"
	srv.RequireBasicAuth("deploy", token)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	evilHTTP, evilTLS := newRecorder(t, false), newRecorder(t, true)
	// A host under a configured prefix that redirects to the attacker.
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evilTLS.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	credFile := filepath.Join(dir, "credentials.yaml")
	creds := fmt.Sprintf("credentials:\n  - url: %s/\n    username: deploy\n    tokenFile: %s\n", redirector.URL, tokenFile)
	if err := os.WriteFile(credFile, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}

	apps := filepath.Join(dir, "apps")
	writeApp(t, apps, "legit", repo.URL)
	writeApp(t, apps, "evil-http", evilHTTP.URL+"/org/config.git")
	writeApp(t, apps, "evil-https", evilTLS.URL+"/org/config.git")
	writeApp(t, apps, "evil-redirect", redirector.URL+"/org/config.git")
	// Every httptest server has the same certificate: trusting the git
	// server's trusts the attacker's too, so only the prefix protects.
	prefix := strings.TrimSuffix(repo.URL, "private.git")
	h := startHub(t, apps, "--git-token-file", tokenFile, "--git-username", "deploy", "--git-token-url", prefix,
		"--git-credentials-file", credFile, "--git-ca-file", srv.CAFile())

	waitRevision(t, h, "legit", head)
	for _, name := range []string{"evil-http", "evil-https", "evil-redirect"} {
		waitAppError(t, h, name)
	}
	for name, r := range map[string]*recorder{"http": evilHTTP, "https": evilTLS} {
		n, auth := r.seen()
		if n == 0 {
			t.Errorf("the attacker's %s server was never contacted: the test proves nothing", name)
		}
		for _, a := range auth {
			t.Errorf("the attacker's %s server received Authorization %q", name, a)
		}
	}
	if h.Grep(token) {
		t.Error("the token is in the hub's log")
	}
}
