//go:build !unit

package security

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
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
// stalled the hub for ever. The ref listing, over http and over ssh, gives
// up at its deadline with an error on that app, and an app on a healthy repo of the same hub still
// gets its new commits.
func TestGitSilentServer(t *testing.T) {
	t.Parallel()
	_, repo := gitRepo(t, "healthy")
	c1, err := repo.CommitAndPush("one")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps")
	silent := silentServer(t)
	stuck, stuckSSH := "http://"+silent+"/org/config.git", "ssh://git@"+silent+"/org/config.git"
	writeApp(t, apps, "healthy", repo.URL)
	writeApp(t, apps, "stuck", stuck)
	writeApp(t, apps, "stuck-ssh", stuckSSH)
	// An ssh key, so that the hub tries ssh repos (the handshake never starts).
	_, priv, err := ed25519.GenerateKey(rand.Reader)
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
	if err := os.WriteFile(hostsFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, apps, "--git-list-timeout", "3s", "--git-ssh-key-file", keyFile, "--git-known-hosts", hostsFile)

	waitAppError(t, h, "stuck", "no answer within 3s", stuck)
	waitAppError(t, h, "stuck-ssh", "no answer within 3s", stuckSSH)
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
