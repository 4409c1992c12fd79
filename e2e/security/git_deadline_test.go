package security

import (
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// silentServer accepts TCP connections and never answers; it returns its
// address.
func silentServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// Finding 6 (git): a repoURL at a server that accepts and never answers
// stalled the hub for ever. The ref listing gives up at its deadline with an
// error on that app, and an app on a healthy repo of the same hub still
// gets its new commits.
func TestGitSilentServer(t *testing.T) {
	_, repo := gitRepo(t, "healthy")
	c1, err := repo.CommitAndPush("one")
	if err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(t.TempDir(), "apps")
	stuck := "http://" + silentServer(t) + "/org/config.git"
	writeApp(t, apps, "healthy", repo.URL)
	writeApp(t, apps, "stuck", stuck)
	h := startHub(t, apps, "--git-list-timeout", "3s")

	waitAppError(t, h, "stuck", "no answer within 3s", stuck)
	waitRevision(t, h, "healthy", c1)
	c2, err := repo.CommitAndPush("two")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.PushWebhook(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	waitRevision(t, h, "healthy", c2)
}
