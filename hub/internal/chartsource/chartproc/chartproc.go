// Package chartproc fetches charts from Helm repositories in chart worker
// processes (the flotilla-render binary run with renderproc.ChartWorkerArg),
// so that the hub links neither Helm nor an OCI client. Client is the hub's
// side (it implements the controller's ChartSource); package chartsource
// serves the requests in the worker (chartsource.Serve).
//
// The hub sends a worker only the credentials a request needs: those of
// the chart's repository with the request, and those of the repositories
// of its dependencies when the worker asks for them (NeedAuth: the worker
// reads the dependencies once it has the chart), never the whole
// credentials file.
package chartproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartref"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// Auth returns the basic-auth credentials for a repository URL (ok false:
// anonymous).
type Auth func(url string) (user, pass string, ok bool, err error)

// ErrNoVersion is wrapped when no chart version matches.
var ErrNoVersion = errors.New("no chart version matches")

// Config configures the chart fetching of a worker (chartsource.Options
// without the credentials); it is sent with every request.
type Config struct {
	// Dir is the chart cache (chartsource.Options.Dir).
	Dir string `json:"dir"`
	// Timeout bounds one request to a repository.
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxBytes bounds what one request may read.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// CABundle holds PEM certificates trusted besides the system's.
	CABundle []byte `json:"caBundle,omitempty"`
	// AllowInsecureHTTP lets http:// repositories be used.
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// Ops of a Request.
const (
	OpResolve = "resolve"
	OpFetch   = "fetch"
)

// Request is one Resolve or Fetch, for a worker.
type Request struct {
	Op         string       `json:"op"`
	Config     Config       `json:"config"`
	RepoURL    string       `json:"repoURL"`
	Chart      string       `json:"chart"`
	Constraint string       `json:"constraint,omitempty"`
	Ref        chartref.Ref `json:"ref,omitzero"`
	// Creds answer the credential lookups the request needs, by URL (as
	// the worker asks for them).
	Creds []Cred `json:"creds,omitempty"`
}

// Cred is the hub's answer to a credential lookup for URL.
type Cred struct {
	URL  string `json:"url"`
	User string `json:"user,omitempty"`
	Pass string `json:"pass,omitempty"`
	OK   bool   `json:"ok,omitempty"`
	// Error is the lookup's error, if any.
	Error string `json:"error,omitempty"`
}

// Answer is a worker's answer to a Request.
type Answer struct {
	Ref chartref.Ref `json:"ref,omitzero"`
	Dir string       `json:"dir,omitempty"`
	// NeedAuth lists URLs whose credentials the request needs and the
	// hub has not sent: it sends them and asks again.
	NeedAuth []string `json:"needAuth,omitempty"`
	Error    string   `json:"error,omitempty"`
	// NoVersion: Error wraps ErrNoVersion.
	NoVersion bool `json:"noVersion,omitempty"`
}

// AuthURL is the URL a repository's credentials are looked up by:
// https://<host>/<path> for oci://<host>/<path>, the URL itself for an
// https repository, none for plain http (credentials never go over it).
func AuthURL(repoURL string) string {
	switch {
	case strings.HasPrefix(repoURL, "oci://"):
		return "https://" + strings.TrimPrefix(repoURL, "oci://")
	case strings.HasPrefix(repoURL, "http://"):
		return ""
	}
	return repoURL
}

// Redact drops user information from a URL for messages.
func Redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexAny(rest+"/", "/") {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}

// Client resolves and fetches charts in the chart workers of a pool.
type Client struct {
	pool        *renderproc.Pool
	cfg         Config
	auth        Auth
	timeoutFlag string

	mu    sync.Mutex
	fetch map[string]*sync.Mutex // digest → one download at a time
}

// NewClient returns a Client sending requests with cfg to pool's workers;
// auth gives credentials by URL (nil: anonymous). timeoutFlag names the
// flag that sets the pool's time limit, for errors.
func NewClient(pool *renderproc.Pool, cfg Config, auth Auth, timeoutFlag string) *Client {
	return &Client{pool: pool, cfg: cfg, auth: auth, timeoutFlag: timeoutFlag, fetch: map[string]*sync.Mutex{}}
}

// Resolve returns the newest version of chart in repoURL matching
// constraint, and its digest (chartsource.Manager.Resolve, in a worker).
func (c *Client) Resolve(ctx context.Context, repoURL, chart, constraint string) (chartref.Ref, error) {
	ans, err := c.do(ctx, Request{Op: OpResolve, RepoURL: repoURL, Chart: chart, Constraint: constraint})
	if err != nil {
		return chartref.Ref{}, err
	}
	return ans.Ref, nil
}

// Fetch returns the directory of the expanded chart ref, downloading it in
// a worker when it is not cached yet (chartsource.Manager.Fetch).
func (c *Client) Fetch(ctx context.Context, repoURL, chart string, ref chartref.Ref) (string, error) {
	dir := filepath.Join(c.cfg.Dir, strings.TrimPrefix(ref.Digest, "sha256:"))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	lock := c.lockFor(ref.Digest)
	lock.Lock()
	defer lock.Unlock()
	ans, err := c.do(ctx, Request{Op: OpFetch, RepoURL: repoURL, Chart: chart, Ref: ref})
	if err != nil {
		return "", err
	}
	return ans.Dir, nil
}

func (c *Client) lockFor(digest string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.fetch[digest]
	if !ok {
		l = &sync.Mutex{}
		c.fetch[digest] = l
	}
	return l
}

// do sends req, with the credentials of its repository, and again with
// those the worker asks for until it has them all.
func (c *Client) do(ctx context.Context, req Request) (Answer, error) {
	req.Config = c.cfg
	known := map[string]bool{}
	if u := AuthURL(req.RepoURL); u != "" {
		req.Creds = append(req.Creds, c.lookup(u))
		known[u] = true
	}
	for {
		js, err := json.Marshal(req)
		if err != nil {
			return Answer{}, err
		}
		resp, err := c.pool.Do(ctx, js)
		if err != nil {
			if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				return Answer{}, err
			}
			var le *renderproc.LimitError
			if errors.As(err, &le) && le.Limit == "time" {
				l := *le
				l.Flag = c.timeoutFlag
				err = &l
			}
			return Answer{}, fmt.Errorf("chart %s from %s: chart worker: %w", req.Chart, Redact(req.RepoURL), err)
		}
		var ans Answer
		if err := json.Unmarshal(resp, &ans); err != nil {
			return Answer{}, fmt.Errorf("chart %s from %s: chart worker answer: %w", req.Chart, Redact(req.RepoURL), err)
		}
		if len(ans.NeedAuth) == 0 {
			if ans.Error == "" {
				return ans, nil
			}
			if ans.NoVersion {
				return Answer{}, &remoteError{msg: ans.Error, wraps: ErrNoVersion}
			}
			return Answer{}, &remoteError{msg: ans.Error}
		}
		progress := false
		for _, u := range ans.NeedAuth {
			if known[u] {
				continue
			}
			known[u] = true
			progress = true
			req.Creds = append(req.Creds, c.lookup(u))
		}
		if !progress {
			return Answer{}, fmt.Errorf("chart %s from %s: the chart worker asks again for credentials it was sent", req.Chart, Redact(req.RepoURL))
		}
	}
}

// lookup answers a credential lookup for url.
func (c *Client) lookup(url string) Cred {
	cr := Cred{URL: url}
	if c.auth == nil {
		return cr
	}
	user, pass, ok, err := c.auth(url)
	if err != nil {
		cr.Error = err.Error()
		return cr
	}
	if ok {
		cr.User, cr.Pass, cr.OK = user, pass, true
	}
	return cr
}

// remoteError is an error the worker returned: its message, and
// ErrNoVersion when it wrapped that.
type remoteError struct {
	msg   string
	wraps error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.wraps }
