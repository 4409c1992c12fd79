package gitsource

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{"https://github.com/org/repo.git", false, true},
		{"ssh://git@github.com/org/repo.git", false, true},
		{"git@github.com:org/repo.git", false, true},
		{"http://git.example.com/org/repo.git", false, false},
		{"http://git.example.com/org/repo.git", true, true},
		{"file:///var/lib/flotilla/git/mirrors/abc", true, false},
		{"/var/lib/flotilla/git/mirrors/abc", true, false},
		{"./repo", true, false},
		{"repo", true, false},
		{"git://github.com/org/repo.git", true, false},
		{"ftp://example.com/repo.git", true, false},
		{"https:///org/repo.git", true, false},
		{"", true, false},
	} {
		err := CheckURL(tc.url, tc.allowHTTP)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, http=%v) = %v; want ok=%v", tc.url, tc.allowHTTP, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrRepoURLRefused) {
			t.Errorf("CheckURL(%q): %v does not wrap ErrRepoURLRefused", tc.url, err)
		}
	}
	err := CheckURL("https://tok:secret@/x", false)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error of a URL with credentials: %v", err)
	}
}

func TestCredentialMatch(t *testing.T) {
	creds := []Credential{
		{URL: "https://git.example.com", TokenFile: "host"},
		{URL: "https://git.example.com/team-a/", TokenFile: "team-a"},
		{URL: "https://git.example.com:8443/x", TokenFile: "port"},
		{URL: "git@git.example.com:infra/", SSHKeyFile: "infra-key"},
		{SSHKeyFile: "any-ssh-key"},
	}
	cs, err := compileCredentials(creds)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ repo, want string }{
		{"https://git.example.com/team-b/app.git", "host"},
		{"https://GIT.example.com:443/team-b/app.git", "host"},
		{"https://git.example.com/team-a/app.git", "team-a"},
		{"https://git.example.com/team-a", "team-a"},
		{"https://git.example.com/team-a.git", "team-a"},
		{"https://git.example.com/team-ab/app.git", "host"},
		{"https://git.example.com/team-a/../team-b/app", "host"},
		{"https://git.example.com.evil.io/team-a/app.git", ""},
		{"https://evil.io/git.example.com/team-a/app.git", ""},
		{"https://git.example.com@evil.io/team-a/app.git", ""},
		{"https://git.example.com:444/team-a/app.git", ""},
		{"https://git.example.com:8443/x/app", "port"},
		{"https://git.example.com:8443/y/app", ""},
		{"http://git.example.com/team-a/app.git", ""},
		{"ssh://git@git.example.com/infra/app.git", "infra-key"},
		{"git@git.example.com:infra/app.git", "infra-key"},
		{"git@elsewhere.example:org/app.git", "any-ssh-key"},
		{"file:///etc", ""},
		{"/etc", ""},
	} {
		got := ""
		if c := cs.match(tc.repo); c != nil {
			got = c.TokenFile + c.SSHKeyFile
		}
		if got != tc.want {
			t.Errorf("match(%q) = %q; want %q", tc.repo, got, tc.want)
		}
	}
}

func TestCredentialTemplatesRefused(t *testing.T) {
	for _, c := range []Credential{
		{URL: "http://git.example.com/", TokenFile: "t"},
		{URL: "", TokenFile: "t"},
		{URL: "https://git.example.com/", SSHKeyFile: "k"},
		{URL: "ssh://git@git.example.com/", TokenFile: "t"},
		{URL: "https://git.example.com/", TokenFile: "t", SSHKeyFile: "k"},
		{URL: "https://git.example.com/"},
		{URL: "file:///srv/git", TokenFile: "t"},
		{URL: "git.example.com/org", TokenFile: "t"},
		{URL: "https://user:pw@git.example.com/", TokenFile: "t"},
	} {
		if _, err := compileCredentials([]Credential{c}); err == nil {
			t.Errorf("template %+v accepted", c)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://github.com/org/repo.git", "https://github.com/org/repo.git"},
		{"https://user:s3cret@github.com/org/repo.git", "https://redacted@github.com/org/repo.git"},
		{"https://ghp_token@github.com/org/repo.git", "https://redacted@github.com/org/repo.git"},
		{"http://u:p@h:8080", "http://redacted@h:8080"},
		{"ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"},
		{"ssh://git:pw@github.com/org/repo.git", "ssh://git:redacted@github.com/org/repo.git"},
		{"git@github.com:org/repo.git", "git@github.com:org/repo.git"},
		{"https://github.com/org/repo@v1", "https://github.com/org/repo@v1"},
		{"not a url", "not a url"},
	} {
		if diff := cmp.Diff(tc.want, Redact(tc.in)); diff != "" {
			t.Errorf("Redact(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	err := scrub("https://ghp_token@github.com/org/repo.git", errors.New(`Get "https://ghp_token@github.com/org/repo.git/info/refs": EOF`))
	if strings.Contains(err.Error(), "ghp_token") {
		t.Errorf("scrubbed error still holds the token: %v", err)
	}
}
