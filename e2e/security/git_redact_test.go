//go:build !unit

package security

import (
	"bytes"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// Finding 10 (URLs): credentials written into a repoURL were logged and
// shown to read-only tokens. They appear neither in the hub's log nor in
// any API answer, whether the repo is reached or not.
func TestGitRepoURLCredentialsRedacted(t *testing.T) {
	t.Parallel()
	const user, pass, token = "leakuser", "leakpass-7c1e", "ghp-leaktoken-9d2f"
	srv, repo := gitRepo(t, "private")
	head, err := repo.CommitAndPush("init")
	if err != nil {
		t.Fatal(err)
	}
	srv.RequireBasicAuth(user, pass)
	withCreds := strings.Replace(repo.URL, "http://", "http://"+user+":"+url.PathEscape(pass)+"@", 1)
	apps := filepath.Join(t.TempDir(), "apps")
	writeApp(t, apps, "with-creds", withCreds)
	writeApp(t, apps, "dead-creds", "http://"+user+":"+pass+"@127.0.0.1:1/gone.git")
	writeApp(t, apps, "token-user", "https://"+token+"@127.0.0.1:1/org/config.git")
	h := startHub(t, apps)

	waitRevision(t, h, "with-creds", head)
	waitAppError(t, h, "dead-creds", "127.0.0.1:1")
	waitAppError(t, h, "token-user", "127.0.0.1:1")

	viewer := readOnlyToken(t, h)
	for _, tok := range []string{viewer, h.Token} {
		for _, path := range []string{"/api/v1/apps", "/api/v1/apps/with-creds", "/api/v1/apps/dead-creds", "/api/v1/apps/token-user", "/api/v1/definitions"} {
			body := getAs(t, h, tok, path)
			for _, secret := range []string{pass, token} {
				if bytes.Contains(body, []byte(secret)) {
					t.Errorf("GET %s shows %q: %s", path, secret, body)
				}
			}
		}
	}
	body := getAs(t, h, viewer, "/api/v1/apps/with-creds")
	if !bytes.Contains(body, []byte("redacted@")) {
		t.Errorf("the app's repoURL is not shown redacted: %s", body)
	}
	for _, secret := range []string{pass, token} {
		if h.Grep(secret) {
			t.Errorf("the hub's log holds %q", secret)
		}
	}
}
