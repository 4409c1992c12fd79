//go:build !unit

package gitsource

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

func newRepo(t *testing.T) (*gitserver.Repo, *Manager) {
	t.Helper()
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "r")
	return repo, New(Options{Dir: filepath.Join(dir, "state"), PollInterval: time.Hour, AllowInsecureHTTP: true}, hclog.NewNullLogger())
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestResolve(t *testing.T) {
	repo, m := newRepo(t)
	if err := repo.Write(map[string][]byte{"a/x.yaml": []byte("x: 1\n"), "b/y.yaml": []byte("y: 1\n")}); err != nil {
		t.Fatal(err)
	}
	c1, err := repo.CommitAndPush("one")
	if err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo.Work, "tag", "v1")
	gitIn(t, repo.Work, "tag", "-a", "v1-annotated", "-m", "release")
	gitIn(t, repo.Work, "push", "-q", "origin", "--tags")
	if err := repo.Write(map[string][]byte{"b/y.yaml": []byte("y: 2\n")}); err != nil {
		t.Fatal(err)
	}
	c2, err := repo.CommitAndPush("two")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rev, want string
		err       error
	}{
		{"main", c2, nil},
		{"", c2, nil},
		{"HEAD", c2, nil},
		{"v1", c1, nil},
		{"v1-annotated", c1, nil},
		{c1, c1, nil},
		{c1[:10], c1, nil},
		{"no-such-branch", "", ErrRevisionNotFound},
		{"deadbeefdeadbeefdeadbeefdeadbeefdeadbeef", "", ErrRevisionNotFound},
	} {
		got, err := m.Resolve(repo.URL, tc.rev)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tc.rev, got, err, tc.want, tc.err)
		}
	}
	// A path untouched by a commit keeps its tree id; a touched one changes.
	a1, _ := m.TreeID(repo.URL, c1, "a")
	a2, _ := m.TreeID(repo.URL, c2, "a")
	b1, _ := m.TreeID(repo.URL, c1, "b/")
	b2, _ := m.TreeID(repo.URL, c2, "b")
	if a1 == "" || a1 != a2 || b1 == b2 {
		t.Errorf("tree ids: a %s→%s (want equal), b %s→%s (want different)", a1, a2, b1, b2)
	}
	if _, err := m.TreeID(repo.URL, c2, "missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("missing path: %v", err)
	}
	dir, err := m.Checkout(repo.URL, c2)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b", "y.yaml")); string(b) != "y: 2\n" {
		t.Errorf("checkout content %q", b)
	}
}

// TestCheckoutRefusesEscapingSymlink: a link out of the repository is
// left out of the checkout and listed, while the rest of the commit is
// checked out (other apps of the repo keep rendering).
func TestCheckoutRefusesEscapingSymlink(t *testing.T) {
	repo, m := newRepo(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(repo.Work, "evil.yaml")); err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitAndPush("evil")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	dir, err := m.Checkout(repo.URL, c)
	if err != nil {
		t.Fatalf("checkout with an escaping symlink: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "evil.yaml")); !os.IsNotExist(err) {
		t.Errorf("evil.yaml was written: %v", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	left, err := LeftOut(root)
	if err != nil || !strings.Contains(left["evil.yaml"], "absolute") {
		t.Errorf("left out: %v, %v; want evil.yaml, an absolute link", left, err)
	}
}

func TestUnreachableRepo(t *testing.T) {
	_, m := newRepo(t)
	err := m.Track(t.Context(), "http://127.0.0.1:1/nothing.git")
	if err == nil {
		t.Fatal("tracking an unreachable repo succeeded")
	}
	if _, err := m.Resolve("http://127.0.0.1:1/nothing.git", "main"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("resolve on an unreachable repo: %v", err)
	}
}

func TestSameRepo(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"https://github.com/org/repo.git", "https://github.com/org/repo", true},
		{"https://github.com/org/repo", "HTTPS://GitHub.com/org/repo/", true},
		{"https://user:tok@github.com/org/repo.git", "https://github.com/org/repo", true},
		{"https://github.com/org/repo", "https://github.com/org/other", false},
		{"https://github.com/Org/repo", "https://github.com/org/repo", false},
	} {
		if got := SameRepo(tc.a, tc.b); got != tc.want {
			t.Errorf("SameRepo(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// A private repo is reached with the token of the credential template whose
// URL prefix matches it, and refused without it. (Over http only because the
// test server is http and the prefix names it; see TestCredentialMatch for
// the policy that keeps tokens off plain http in the hub.)
func TestTokenCredentials(t *testing.T) {
	dir := t.TempDir()
	srv, repo := gitserver.StartT(t, dir, "private")
	if _, err := repo.CommitAndPush("init"); err != nil {
		t.Fatal(err)
	}
	srv.RequireBasicAuth("deploy", "s3cret")

	anon := New(Options{Dir: filepath.Join(dir, "anon"), AllowInsecureHTTP: true}, hclog.NewNullLogger())
	if err := anon.Track(t.Context(), repo.URL); err == nil {
		t.Fatal("anonymous access to a private repo succeeded")
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The template is matched and its token read; over http it is not sent.
	cs, err := compileCredentials([]Credential{{URL: "https://" + strings.TrimPrefix(repo.URL, "http://"), Username: "deploy", TokenFile: tokenFile}})
	if err != nil {
		t.Fatal(err)
	}
	httpsURL := "https://" + strings.TrimPrefix(repo.URL, "http://")
	auth, err := cs.authFor(httpsURL)
	if err != nil || auth == nil || auth.String() != "http-basic-auth - deploy:*******" {
		t.Fatalf("auth for %s: %v, %v", httpsURL, auth, err)
	}
	if auth, _ := cs.authFor(repo.URL); auth != nil {
		t.Fatalf("a token would be sent over plain http to %s", repo.URL)
	}
}

// A repo over SSH is reached with the key file and a known_hosts file.
func TestSSHKeyCredentials(t *testing.T) {
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "viassh")
	head, err := repo.CommitAndPush("init")
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, hostsFile := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshSrv, err := gitserver.StartSSH(filepath.Join(dir, "git"), sshPub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sshSrv.Close() })
	if err := os.WriteFile(hostsFile, []byte(sshSrv.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := New(Options{Dir: filepath.Join(dir, "state"), Credentials: []Credential{{SSHKeyFile: keyFile, KnownHostsFile: hostsFile}}}, hclog.NewNullLogger())
	url := sshSrv.URL("viassh")
	if err := m.Track(t.Context(), url); err != nil {
		t.Fatalf("track over ssh: %v", err)
	}
	if got, err := m.Resolve(url, "main"); err != nil || got != head {
		t.Fatalf("resolve over ssh: %q, %v; want %s", got, err, head)
	}
	// Another key is refused.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	ob, _ := ssh.MarshalPrivateKey(other, "")
	otherFile := filepath.Join(dir, "other")
	if err := os.WriteFile(otherFile, pem.EncodeToMemory(ob), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := New(Options{Dir: filepath.Join(dir, "state2"), Credentials: []Credential{{SSHKeyFile: otherFile, KnownHostsFile: hostsFile}}}, hclog.NewNullLogger())
	if err := m2.Track(t.Context(), url); err == nil {
		t.Fatal("an unauthorized key was accepted")
	}
}

// TestResolveDefaultBranch: "HEAD" (and no revision) is the branch the
// remote's HEAD points at, as Argo CD resolves it, even when it is neither
// main nor master; moving the remote's HEAD moves the answer.
func TestResolveDefaultBranch(t *testing.T) {
	repo, m := newRepo(t)
	if err := repo.Write(map[string][]byte{"x.yaml": []byte("x: main\n")}); err != nil {
		t.Fatal(err)
	}
	onMain, err := repo.CommitAndPush("on main")
	if err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo.Work, "checkout", "-q", "-b", "trunk")
	if err := repo.Write(map[string][]byte{"x.yaml": []byte("x: trunk\n")}); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo.Work, "commit", "-q", "-am", "on trunk")
	gitIn(t, repo.Work, "push", "-q", "origin", "trunk")
	onTrunk := gitIn(t, repo.Work, "rev-parse", "HEAD")
	gitIn(t, repo.Bare, "symbolic-ref", "HEAD", "refs/heads/trunk")
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{"", "HEAD"} {
		if got, err := m.Resolve(repo.URL, rev); err != nil || got != onTrunk {
			t.Errorf("Resolve(%q) = %s, %v; want trunk's %s (main is %s)", rev, got, err, onTrunk, onMain)
		}
	}
	gitIn(t, repo.Bare, "symbolic-ref", "HEAD", "refs/heads/main")
	mr, err := m.mirror(repo.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.poll(t.Context(), mr); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Resolve(repo.URL, "HEAD"); err != nil || got != onMain {
		t.Errorf("after the remote's HEAD moved to main: Resolve(HEAD) = %s, %v; want %s", got, err, onMain)
	}
}
