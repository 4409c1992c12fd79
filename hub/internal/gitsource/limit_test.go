//go:build !unit

package gitsource

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// silentServer accepts TCP connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// A server that accepts and never answers is given up after the list
// timeout, with an error saying so.
func TestListDeadline(t *testing.T) {
	m := New(Options{Dir: t.TempDir(), AllowInsecureHTTP: true, ListTimeout: 300 * time.Millisecond}, hclog.NewNullLogger())
	url := "http://" + silentServer(t) + "/stuck.git"
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := m.Track(ctx, url)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 300ms") || !strings.Contains(err.Error(), url) {
		t.Fatalf("tracking a silent server: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the list deadline did not end the call")
	}
}

// The same over ssh: go-git gives its ssh connection no context, so the
// hub's dialer gives it the operation's deadline.
func TestListDeadlineSSH(t *testing.T) {
	dir := t.TempDir()
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
	m := New(Options{Dir: filepath.Join(dir, "state"), ListTimeout: 300 * time.Millisecond,
		Credentials: []Credential{{SSHKeyFile: keyFile, KnownHostsFile: hostsFile}}}, hclog.NewNullLogger())
	url := "ssh://git@" + silentServer(t) + "/stuck.git"
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = m.Track(ctx, url)
	if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("tracking a silent ssh server: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the list deadline did not end the call")
	}
}

// A fetch bringing an object larger than the limit is refused, whether the
// pack is large (random data) or small (zeros, which compress), and the
// mirror stays at its last good commit.
func TestFetchSizeLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		blob func() []byte
	}{
		{"random", func() []byte { b := make([]byte, 3<<20); _, _ = rand.Read(b); return b }},
		{"zeros", func() []byte { return make([]byte, 3<<20) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, repo := gitserver.StartT(t, dir, "r")
			if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 1\n")}); err != nil {
				t.Fatal(err)
			}
			good, err := repo.CommitAndPush("small")
			if err != nil {
				t.Fatal(err)
			}
			m := New(Options{Dir: filepath.Join(dir, "state"), AllowInsecureHTTP: true, MaxFetchBytes: 1 << 20}, hclog.NewNullLogger())
			if err := m.Track(t.Context(), repo.URL); err != nil {
				t.Fatal(err)
			}
			if err := repo.Write(map[string][]byte{"big.bin": tc.blob()}); err != nil {
				t.Fatal(err)
			}
			if _, err := repo.CommitAndPush("big"); err != nil {
				t.Fatal(err)
			}
			mr, _ := m.mirror(repo.URL)
			_, err = m.poll(t.Context(), mr)
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "1 MiB") || !strings.Contains(err.Error(), repo.URL) {
				t.Fatalf("fetch of a 3 MiB blob with a 1 MiB limit: %v", err)
			}
			if h, err := mr.resolve("main"); err != nil || h.String() != good {
				t.Fatalf("mirror after the refused fetch: %s, %v; want the last good %s", h, err, good)
			}
			left, _ := filepath.Glob(filepath.Join(mr.dir, ".incoming-*"))
			packs, _ := filepath.Glob(filepath.Join(mr.dir, "objects", "pack", "*.pack"))
			var size int64
			for _, p := range packs {
				if fi, err := os.Stat(p); err == nil {
					size += fi.Size()
				}
			}
			if len(left) > 0 || size > 1<<20 {
				t.Fatalf("refused fetch left %v and %d bytes of packs", left, size)
			}
		})
	}
}

// Over https, the token of the matching template reaches the server (whose
// CA is trusted through CAFile) and the repo is fetched; without the
// template, the private repo is refused.
func TestTokenOverTLS(t *testing.T) {
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
	srv.RequireBasicAuth("deploy", "s3cret")
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(repo.URL, "private.git")
	m := New(Options{Dir: filepath.Join(dir, "with"), CAFile: srv.CAFile(), Credentials: []Credential{{URL: prefix, Username: "deploy", TokenFile: tokenFile}}}, hclog.NewNullLogger())
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatalf("track over https with the token: %v", err)
	}
	if got, err := m.Resolve(repo.URL, "main"); err != nil || got != head {
		t.Fatalf("resolve: %s, %v; want %s", got, err, head)
	}
	other := New(Options{Dir: filepath.Join(dir, "other"), CAFile: srv.CAFile(), Credentials: []Credential{{URL: prefix + "elsewhere/", Username: "deploy", TokenFile: tokenFile}}}, hclog.NewNullLogger())
	if err := other.Track(t.Context(), repo.URL); err == nil {
		t.Fatal("a private repo outside the template's prefix was fetched")
	}
}

// A server whose ref advertisement never ends is cut off at the limit
// instead of filling the hub's memory.
func TestEndlessAdvertisement(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		_, _ = io.WriteString(w, "001e# service=git-upload-pack\n0000")
		for i := 1; r.Context().Err() == nil; i++ {
			line := fmt.Sprintf("%040x refs/heads/b%08d\n", i, i)
			if i == 1 {
				line = fmt.Sprintf("%040x refs/heads/b%08d\x00ofs-delta\n", i, i)
			}
			if _, err := fmt.Fprintf(w, "%04x%s", len(line)+4, line); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	m := New(Options{Dir: t.TempDir(), AllowInsecureHTTP: true, MaxFetchBytes: 1 << 20}, hclog.NewNullLogger())
	err := m.Track(t.Context(), srv.URL+"/endless.git")
	if !errors.Is(err, ErrTooLarge) && (err == nil || !strings.Contains(err.Error(), "more than 1 MiB")) {
		t.Fatalf("tracking an endless ref advertisement: %v", err)
	}
	t.Log(err)
}

// While a fetch waits on a slow remote, Resolve and TreeID answer at once
// from the last good state; the new commit shows once the fetch is done.
func TestReadersNotHeldBySlowFetch(t *testing.T) {
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "r")
	if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 1\n")}); err != nil {
		t.Fatal(err)
	}
	c1, err := repo.CommitAndPush("one")
	if err != nil {
		t.Fatal(err)
	}
	// A proxy that holds pack downloads (POST .../git-upload-pack) while hold
	// is open, and says when one is held.
	target, _ := url.Parse(repo.URL)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	var holding atomic.Bool
	held, release := make(chan struct{}, 1), make(chan struct{})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && holding.Load() {
			held <- struct{}{}
			<-release
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	viaProxy := proxy.URL + "/r.git"
	m := New(Options{Dir: filepath.Join(dir, "state"), AllowInsecureHTTP: true}, hclog.NewNullLogger())
	if err := m.Track(t.Context(), viaProxy); err != nil {
		t.Fatal(err)
	}
	tree1, err := m.TreeID(viaProxy, c1, ".")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Resolve(viaProxy, "main"); err != nil || got != c1 {
		t.Fatalf("resolve: %s, %v", got, err)
	}
	if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 2\n")}); err != nil {
		t.Fatal(err)
	}
	c2, err := repo.CommitAndPush("two")
	if err != nil {
		t.Fatal(err)
	}
	holding.Store(true)
	mr, _ := m.mirror(viaProxy)
	polled := make(chan error, 1)
	go func() { _, err := m.poll(t.Context(), mr); polled <- err }()
	<-held // the fetch is now waiting on the remote, holding the repo

	answered := make(chan string, 1)
	go func() {
		rev, rerr := m.Resolve(viaProxy, "main")
		tree, terr := m.TreeID(viaProxy, c1, ".")
		answered <- fmt.Sprintf("%s %v %s %v", rev, rerr, tree, terr)
	}()
	select {
	case got := <-answered:
		if want := fmt.Sprintf("%s <nil> %s <nil>", c1, tree1); got != want {
			t.Fatalf("during the fetch: %s; want %s", got, want)
		}
	case <-t.Context().Done():
		t.Fatal("Resolve and TreeID waited for the fetch")
	}
	close(release)
	if err := <-polled; err != nil {
		t.Fatal(err)
	}
	if got, err := m.Resolve(viaProxy, "main"); err != nil || got != c2 {
		t.Fatalf("after the fetch: %s, %v; want %s", got, err, c2)
	}
}
