package gitsource

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ErrRepoURLRefused is returned for a repository URL whose scheme the hub
// does not fetch from: file:// URLs, local paths, git://, and http:// unless
// plain HTTP is allowed.
var ErrRepoURLRefused = errors.New("repo URL refused")

// SameRepo reports whether two repository URLs name the same repository,
// ignoring a trailing ".git" or "/", the scheme's case and credentials.
func SameRepo(a, b string) bool { return normalize(a) == normalize(b) }

func normalize(u string) string {
	u = strings.TrimSpace(u)
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.Index(rest+"/", "/") {
			rest = rest[at+1:]
		}
		u = strings.ToLower(u[:i]) + "://" + strings.ToLower(hostOf(rest)) + pathOf(rest)
	}
	u = strings.TrimSuffix(u, "/")
	return strings.TrimSuffix(u, ".git")
}

func hostOf(s string) string {
	if i := strings.Index(s, "/"); i >= 0 {
		return s[:i]
	}
	return s
}

func pathOf(s string) string {
	if i := strings.Index(s, "/"); i >= 0 {
		return s[i:]
	}
	return ""
}

// CheckURL applies the scheme policy to a repository URL: https://, ssh://
// and scp-style (git@host:org/repo) are fetched; http:// only when
// allowHTTP; file://, local paths and every other scheme are refused with an
// error wrapping ErrRepoURLRefused that names the URL (redacted).
func CheckURL(repoURL string, allowHTTP bool) error {
	ep, err := transport.NewEndpoint(repoURL)
	if err != nil {
		return fmt.Errorf("repo %s: %w: %v", Redact(repoURL), ErrRepoURLRefused, err)
	}
	switch strings.ToLower(ep.Protocol) {
	case "https", "ssh":
		if ep.Host == "" {
			return fmt.Errorf("repo %s: %w: no host", Redact(repoURL), ErrRepoURLRefused)
		}
		return nil
	case "http":
		if !allowHTTP {
			return fmt.Errorf("repo %s: %w: plain http is off (use https, or start the hub with --allow-insecure-http-repos)", Redact(repoURL), ErrRepoURLRefused)
		}
		if ep.Host == "" {
			return fmt.Errorf("repo %s: %w: no host", Redact(repoURL), ErrRepoURLRefused)
		}
		return nil
	case "file":
		return fmt.Errorf("repo %s: %w: local paths and file:// are not fetched (use https or ssh)", Redact(repoURL), ErrRepoURLRefused)
	}
	return fmt.Errorf("repo %s: %w: scheme %q is not fetched (use https or ssh)", Redact(repoURL), ErrRepoURLRefused, ep.Protocol)
}

// Redact returns repoURL with any password, and any user name of an http(s)
// URL (where a token may sit), replaced by "redacted". An ssh user name
// (git@) is kept: it is not a secret. Strings that are not URLs come back
// unchanged.
func Redact(repoURL string) string {
	i := strings.Index(repoURL, "://")
	if i < 0 {
		return repoURL
	}
	scheme := strings.ToLower(repoURL[:i])
	rest := repoURL[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return repoURL
	}
	user, hasPass := rest[:at], false
	if c := strings.Index(user, ":"); c >= 0 {
		user, hasPass = user[:c], true
	}
	switch {
	case strings.HasPrefix(scheme, "ssh") || strings.HasSuffix(scheme, "ssh"):
		if !hasPass {
			return repoURL
		}
		user += ":redacted"
	default:
		user = "redacted"
	}
	return repoURL[:i+3] + user + rest[at:]
}

// secretsOf lists the parts of repoURL that Redact hides, to scrub them
// from error texts written by libraries.
func secretsOf(repoURL string) []string {
	u, err := url.Parse(repoURL)
	if err != nil || u.User == nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, u.User.String(), p, url.PathEscape(p), url.QueryEscape(p))
	}
	if s := strings.ToLower(u.Scheme); s == "http" || s == "https" {
		if n := u.User.Username(); len(n) >= 4 { // a token in the user name
			out = append(out, n, url.PathEscape(n))
		}
	}
	return out
}

// redactedError scrubs a repo URL's secrets from the text of an error.
type redactedError struct {
	err error
	url string
}

func (e *redactedError) Error() string { return RedactText(e.err.Error(), e.url) }

func (e *redactedError) Unwrap() error { return e.err }

// scrub returns err with repoURL's secrets removed from its text.
func scrub(repoURL string, err error) error {
	if err == nil {
		return nil
	}
	if len(secretsOf(repoURL)) == 0 {
		return err
	}
	return &redactedError{err: err, url: repoURL}
}

// location is a repository URL or URL prefix reduced to what credentials
// are matched on: scheme, host, port and a cleaned path.
type location struct {
	scheme string // https, http or ssh (scp-style is ssh)
	host   string // lower case
	port   int    // the scheme's default when not given
	path   string // cleaned, leading "/", no trailing "/" or ".git" (root is "")
}

var defaultPorts = map[string]int{"http": 80, "https": 443, "ssh": 22}

func parseLocation(raw string) (location, error) {
	ep, err := transport.NewEndpoint(strings.TrimSpace(raw))
	if err != nil {
		return location{}, err
	}
	l := location{scheme: strings.ToLower(ep.Protocol), host: strings.ToLower(ep.Host), port: ep.Port}
	if l.port == 0 {
		l.port = defaultPorts[l.scheme]
	}
	p := ep.Path
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	p = path.Clean("/" + p)
	l.path = strings.TrimSuffix(strings.TrimSuffix(p, "/"), ".git")
	return l, nil
}

// under reports whether l lies under the prefix p: same scheme, host and
// port, and p's path equal to l's or a whole-segment prefix of it.
func (l location) under(p location) bool {
	if l.scheme != p.scheme || l.host != p.host || l.port != p.port {
		return false
	}
	return p.path == "" || l.path == p.path || strings.HasPrefix(l.path, p.path+"/")
}

// RedactText removes repoURL's credentials from text (an error or status
// message that may quote the URL as written).
func RedactText(text, repoURL string) string {
	for _, sec := range secretsOf(repoURL) {
		text = strings.ReplaceAll(text, sec, "redacted")
	}
	return text
}
