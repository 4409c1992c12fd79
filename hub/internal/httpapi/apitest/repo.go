package apitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// Epoch is the fixed time of the fixture's first commit and of the
// simulated agents' clocks, so that commit hashes and history are the same
// on every run.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Repo is a local git repository on branch main, served over git's HTTP
// protocol at URL.
type Repo struct {
	Dir     string
	URL     string
	Commits []string // oldest first
	repo    *git.Repository
}

// serve serves the repository over HTTP (git http-backend) until t ends.
func (r *Repo) serve(t testing.TB) {
	t.Helper()
	srv, err := gitserver.Start(filepath.Dir(r.Dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	r.URL = strings.TrimSuffix(srv.URL(filepath.Base(r.Dir)), ".git")
}

// NewRepo makes a repository in dir.
func NewRepo(t testing.TB, dir string) *Repo {
	t.Helper()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
		Bare:        false,
	})
	if err != nil {
		t.Fatalf("init repo %s: %v", dir, err)
	}
	return &Repo{Dir: dir, repo: r}
}

// Commit writes files (path → content, relative to the repo) and commits
// them at Epoch plus one minute per earlier commit.
func (r *Repo) Commit(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		full := filepath.Join(r.Dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(p); err != nil {
			t.Fatalf("git add %s: %v", p, err)
		}
	}
	when := Epoch.Add(time.Duration(len(r.Commits)) * time.Minute)
	sig := &object.Signature{Name: "Flotilla Test", Email: "test@flotilla.dev", When: when}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatalf("git commit %q: %v", msg, err)
	}
	r.Commits = append(r.Commits, h.String())
	return h.String()
}
