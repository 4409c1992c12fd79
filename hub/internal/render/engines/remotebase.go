package engines

import (
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// errNotGitRepo is returned by ParseRemoteBase for an http(s) URL that
// does not name a git repository (a file kustomize would download).
var errNotGitRepo = errors.New("a file over HTTP, not a git repository: remote files are not fetched (name a repository, for example https://host/org/repo//path?ref=v1)")

var (
	scpUser    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*@`)
	anyScheme  = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)
	ignoredArg = map[string]bool{"timeout": true, "submodules": true}
)

// ParseRemoteBase parses a kustomization entry that isRemote reports as
// remote. It refuses, with the reason: file:// and schemes other than
// https, http and ssh; user names or passwords in an http(s) URL and
// passwords in an ssh URL (credentials come from the hub's templates
// only); a folder that leaves the repository; query parameters other than
// ref, version, timeout and submodules (timeout and submodules are
// ignored: the hub's own fetch deadlines apply, and checkouts never hold
// submodules); and an http(s) URL that names no repository (a remote file).
func ParseRemoteBase(entry string) (render.RemoteBase, error) {
	s := strings.TrimSpace(entry)
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == ' ' }) {
		return render.RemoteBase{}, errors.New("spaces or control characters in the URL")
	}
	forced := false
	if len(s) >= 5 && strings.EqualFold(s[:5], "git::") {
		s, forced = s[5:], true
	}
	s, query, _ := strings.Cut(s, "?")
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	if strings.Contains(s, "#") {
		return render.RemoteBase{}, errors.New("a fragment (#) is not part of a kustomize repository URL")
	}
	ref, explicit, err := parseRemoteQuery(query)
	if err != nil {
		return render.RemoteBase{}, err
	}

	var scheme, user, host, rest string
	scp := false
	if m := anyScheme.FindStringSubmatch(s); m != nil {
		scheme = strings.ToLower(m[1])
		switch scheme {
		case "https", "http", "ssh":
		case "file":
			return render.RemoteBase{}, errors.New("file:// URLs and local paths are not fetched (name an https or ssh repository)")
		default:
			return render.RemoteBase{}, fmt.Errorf("scheme %q is not fetched (use https or ssh)", scheme)
		}
		rest = s[len(m[0]):]
		host, rest, _ = strings.Cut(rest, "/")
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			user, host = host[:at], host[at+1:]
			if scheme != "ssh" {
				return render.RemoteBase{}, errors.New("credentials in the URL are refused: the hub sends only those of its credential templates")
			}
			if strings.Contains(user, ":") {
				return render.RemoteBase{}, errors.New("a password in the URL is refused: the hub sends only the keys of its credential templates")
			}
		}
		if strings.EqualFold(host, "github.com") && scheme != "ssh" {
			scheme, host = "https", "github.com"
		}
	} else {
		lower := strings.ToLower(s)
		switch {
		case scpUser.MatchString(s):
			at := strings.IndexByte(s, '@')
			user, s = s[:at], s[at+1:]
			h, r, ok := strings.Cut(s, ":")
			if !ok || strings.Contains(h, "/") {
				return render.RemoteBase{}, errors.New("expected user@host:org/repo")
			}
			host, rest, scp = h, r, true
		case strings.HasPrefix(lower, "github.com/"):
			scheme, host, rest = "https", "github.com", s[len("github.com/"):]
		case strings.HasPrefix(lower, "github.com:"):
			user, host, rest, scp = "git", "github.com", s[len("github.com:"):], true
		case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "."):
			return render.RemoteBase{}, errors.New("file:// URLs and local paths are not fetched (name an https or ssh repository)")
		default:
			return render.RemoteBase{}, errors.New("not a repository URL kustomize reads (https://, ssh://, git@host: or github.com/)")
		}
	}
	if host == "" || strings.ContainsAny(host, "\\") {
		return render.RemoteBase{}, errors.New("no host")
	}

	if containsDotDot(rest) {
		return render.RemoteBase{}, errors.New("the folder leaves the repository (..)")
	}
	repo, sub, marked := splitRepoPath(rest)
	if !marked {
		httpURL := scheme == "https" || scheme == "http"
		if httpURL && !forced && !explicit && !strings.EqualFold(host, "github.com") {
			return render.RemoteBase{}, errNotGitRepo
		}
		segs := strings.Split(rest, "/")
		if len(segs) < 2 {
			return render.RemoteBase{}, errors.New("no repository in the URL (expected org/repo)")
		}
		repo, sub = strings.Join(segs[:2], "/"), strings.Join(segs[2:], "/")
	}
	repo = strings.Trim(repo, "/")
	if repo == "" || path.Clean("/"+repo) != "/"+repo || strings.Contains(repo, "//") {
		return render.RemoteBase{}, fmt.Errorf("repository path %q is not clean", repo)
	}
	sub = path.Clean("/" + strings.Trim(sub, "/"))
	b := render.RemoteBase{Path: strings.TrimPrefix(sub, "/"), Ref: ref}
	if b.Path == "" {
		b.Path = "."
	}
	switch {
	case scp:
		b.RepoURL = user + "@" + host + ":" + repo
	case user != "":
		b.RepoURL = scheme + "://" + user + "@" + host + "/" + repo
	default:
		b.RepoURL = scheme + "://" + host + "/" + repo
	}
	return b, nil
}

// containsDotDot reports whether a segment of p is "..".
func containsDotDot(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

// splitRepoPath splits a URL path (after the host) into the repository
// and the folder at kustomize's markers: "//", Azure's "_git/<repo>", or
// ".git". marked is false when there is none.
func splitRepoPath(p string) (repo, sub string, marked bool) {
	if i := strings.Index(p, "_git/"); i >= 0 {
		after := p[i+len("_git/"):]
		name, sub, _ := strings.Cut(after, "/")
		return p[:i+len("_git/")] + name, sub, true
	}
	if i := strings.Index(p, "//"); i >= 0 {
		return p[:i], p[i+2:], true
	}
	for i := 0; ; {
		j := strings.Index(p[i:], ".git")
		if j < 0 {
			return p, "", false
		}
		end := i + j + len(".git")
		if end == len(p) || p[end] == '/' {
			return p[:end], p[end:], true
		}
		i = end
	}
}

// parseRemoteQuery reads ref (or version) from a repository URL's query;
// explicit says one was given.
func parseRemoteQuery(q string) (ref string, explicit bool, err error) {
	if q == "" {
		return "HEAD", false, nil
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return "", false, fmt.Errorf("query %q: %w", q, err)
	}
	for k := range vals {
		if k != "ref" && k != "version" && !ignoredArg[k] {
			return "", false, fmt.Errorf("query parameter %q is not known (kustomize reads ref, version, timeout and submodules)", k)
		}
	}
	ref = vals.Get("version")
	if r := vals.Get("ref"); r != "" {
		ref = r
	}
	if ref == "" {
		return "HEAD", vals.Has("ref") || vals.Has("version"), nil
	}
	if strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \\~^:") {
		return "", false, fmt.Errorf("ref %q is not a branch, tag or commit name", ref)
	}
	return ref, true, nil
}
