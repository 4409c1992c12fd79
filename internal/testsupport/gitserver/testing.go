package gitserver

import (
	"os"
	"path/filepath"
	"testing"
)

// StartT serves a new bare repository name from dir/git for the length of
// the test and returns the server and a working clone in dir/work.
func StartT(t testing.TB, dir, name string) (*Server, *Repo) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := Start(filepath.Join(dir, "git"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	repo, err := srv.NewRepo(name, filepath.Join(dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	return srv, repo
}
