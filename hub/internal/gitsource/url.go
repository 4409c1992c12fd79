package gitsource

import "strings"

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
