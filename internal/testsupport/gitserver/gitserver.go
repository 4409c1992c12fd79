// Package gitserver serves real git repositories over HTTP for tests and the
// quickstart, with git's own smart-HTTP backend (git http-backend as CGI),
// and gives tests a working clone to commit and push through it.
package gitserver

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Server serves every bare repository under its root at /<name>.git.
type Server struct {
	root   string
	srv    *http.Server
	lis    net.Listener
	tls    *httptest.Server // when serving https
	caFile string           // the https certificate, PEM, for clients to trust

	mu         sync.Mutex
	user, pass string // required HTTP basic auth, when set
}

// RequireBasicAuth makes the server answer 401 to requests without these
// credentials, as a private git host does.
func (s *Server) RequireBasicAuth(user, pass string) {
	s.mu.Lock()
	s.user, s.pass = user, pass
	s.mu.Unlock()
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.user == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && u == s.user && p == s.pass
}

// Start serves the bare repositories under root on a free loopback port
// over plain http.
func Start(root string) (*Server, error) { return start(root, false, "127.0.0.1:0") }

// StartOn serves the bare repositories under root over plain http on addr
// (for example a Docker network's gateway address, where containers on that
// network reach it).
func StartOn(root, addr string) (*Server, error) { return start(root, false, addr) }

// StartTLS serves the bare repositories under root over https on a free
// loopback port, with a certificate for 127.0.0.1 whose PEM is in CAFile
// (the working clones of NewRepo push without verifying it).
func StartTLS(root string) (*Server, error) { return start(root, true, "") }

func start(root string, useTLS bool, addr string) (*Server, error) {
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git --exec-path (is git installed?): %w", err)
	}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	s := &Server{root: root}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	if useTLS {
		s.tls = httptest.NewUnstartedServer(handler)
		s.tls.Config.ReadHeaderTimeout = 10 * time.Second
		s.tls.StartTLS()
		s.caFile = filepath.Join(root, "server-ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.tls.Certificate().Raw})
		if err := os.WriteFile(s.caFile, pemBytes, 0o644); err != nil {
			s.tls.Close()
			return nil, err
		}
		return s, nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.lis = lis
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: handler}
	go func() { _ = s.srv.Serve(lis) }()
	return s, nil
}

// CAFile is the PEM file of the https server's certificate ("" over http).
func (s *Server) CAFile() string { return s.caFile }

// URL returns the clone URL of repository name.
func (s *Server) URL(name string) string {
	if s.tls != nil {
		return fmt.Sprintf("%s/%s.git", s.tls.URL, name)
	}
	return fmt.Sprintf("http://%s/%s.git", s.lis.Addr(), name)
}

// Close stops the server.
func (s *Server) Close() error {
	if s.tls != nil {
		s.tls.CloseClientConnections()
		s.tls.Close()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Repo is a bare repository on the server and a working clone of it.
type Repo struct {
	URL  string
	Bare string
	Work string
}

// NewRepo creates the bare repository name (branch main, pushes over HTTP
// allowed) and a working clone in work.
func (s *Server) NewRepo(name, work string) (*Repo, error) {
	bare := filepath.Join(s.root, name+".git")
	if err := git("", "init", "--bare", "--initial-branch=main", bare); err != nil {
		return nil, err
	}
	if err := git(bare, "config", "http.receivepack", "true"); err != nil {
		return nil, err
	}
	if err := git("", "init", "--initial-branch=main", work); err != nil {
		return nil, err
	}
	// http.postBuffer: git sends larger pushes chunked, which CGI cannot take.
	for _, kv := range [][2]string{{"user.name", "Flotilla Test"}, {"user.email", "test@flotilla.invalid"}, {"commit.gpgsign", "false"}, {"http.postBuffer", "524288000"}} {
		if err := git(work, "config", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if s.caFile != "" {
		// The test's own pushes skip verification (git's TLS library may
		// refuse httptest's certificate); the hub is what verifies it.
		if err := git(work, "config", "http.sslVerify", "false"); err != nil {
			return nil, err
		}
	}
	if err := git(work, "remote", "add", "origin", s.URL(name)); err != nil {
		return nil, err
	}
	return &Repo{URL: s.URL(name), Bare: bare, Work: work}, nil
}

// Write writes files (path relative to the work tree → content), removing
// those whose content is nil.
func (r *Repo) Write(files map[string][]byte) error {
	for p, b := range files {
		full := filepath.Join(r.Work, filepath.FromSlash(p))
		if b == nil {
			if err := os.RemoveAll(full); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CommitAndPush commits everything in the work tree and pushes it over HTTP.
// It returns the new commit.
func (r *Repo) CommitAndPush(msg string) (string, error) {
	if err := git(r.Work, "add", "-A"); err != nil {
		return "", err
	}
	if err := git(r.Work, "commit", "--allow-empty", "-q", "-m", msg); err != nil {
		return "", err
	}
	if err := git(r.Work, "push", "-q", "origin", "HEAD:main"); err != nil {
		return "", err
	}
	return r.Head()
}

// TagAndPush tags the work tree's HEAD as tag (moving it if it exists)
// and pushes the tag.
func (r *Repo) TagAndPush(tag string) error {
	if err := git(r.Work, "tag", "-f", tag); err != nil {
		return err
	}
	return git(r.Work, "push", "-q", "-f", "origin", "refs/tags/"+tag)
}

// Revert reverts commit in the work tree and pushes.
func (r *Repo) Revert(commit string) (string, error) {
	if err := git(r.Work, "revert", "--no-edit", commit); err != nil {
		return "", err
	}
	if err := git(r.Work, "push", "-q", "origin", "HEAD:main"); err != nil {
		return "", err
	}
	return r.Head()
}

// Head returns the work tree's HEAD commit.
func (r *Repo) Head() (string, error) {
	out, err := exec.Command("git", "-C", r.Work, "rev-parse", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func git(dir string, args ...string) error {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
