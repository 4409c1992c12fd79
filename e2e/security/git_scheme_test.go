//go:build !unit

package security

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
)

// Finding 10 (URLs): file:// and local-path repoURLs were fetched, so an
// Application could read any repository on the hub's disk, the hub's own
// mirrors included. Both are refused with an error on the app naming the
// URL; the app next to them is unaffected.
func TestGitLocalRepoURLsRefused(t *testing.T) {
	t.Parallel()
	_, repo := gitRepo(t, "config")
	head, err := repo.CommitAndPush("init")
	if err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(t.TempDir(), "apps")
	writeApp(t, apps, "legit", repo.URL)
	h := startHub(t, apps)
	waitRevision(t, h, "legit", head)

	// The hub's own mirror of the legit repo, and the git server's bare repo.
	sum := sha256.Sum256([]byte(repo.URL))
	mirror := filepath.Join(h.StateDir, "git", "mirrors", hex.EncodeToString(sum[:8]))
	for name, url := range map[string]string{
		"mirror-file-url":   "file://" + mirror,
		"mirror-local-path": mirror,
		"bare-file-url":     "file://" + repo.Bare,
		"bare-local-path":   repo.Bare,
	} {
		writeApp(t, apps, name, url)
		waitAppError(t, h, name, "refused", url)
	}
	waitRevision(t, h, "legit", head)
}
