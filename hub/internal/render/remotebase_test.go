package render

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseRemoteBase reads the repository URL forms Argo CD users write
// in kustomizations, and refuses the ones the hub must not fetch.
func TestParseRemoteBase(t *testing.T) {
	ok := []struct {
		in   string
		want RemoteBase
	}{
		{"https://git.example.com/org/repo//deploy/base?ref=v1.2.0", RemoteBase{"https://git.example.com/org/repo", "deploy/base", "v1.2.0"}},
		{"https://git.example.com/org/repo//deploy/base?version=v1.2.0", RemoteBase{"https://git.example.com/org/repo", "deploy/base", "v1.2.0"}},
		{"https://git.example.com/org/repo?ref=main", RemoteBase{"https://git.example.com/org/repo", ".", "main"}},
		{"https://git.example.com/org/repo.git", RemoteBase{"https://git.example.com/org/repo.git", ".", "HEAD"}},
		{"https://git.example.com/org/repo.git/deploy?ref=abc123", RemoteBase{"https://git.example.com/org/repo.git", "deploy", "abc123"}},
		{"https://git.example.com/group/sub/repo.git//x", RemoteBase{"https://git.example.com/group/sub/repo.git", "x", "HEAD"}},
		{"https://git.example.com/org/repo.github-io//x", RemoteBase{"https://git.example.com/org/repo.github-io", "x", "HEAD"}},
		{"https://git.example.com/org/repo/deploy?ref=v1", RemoteBase{"https://git.example.com/org/repo", "deploy", "v1"}},
		{"HTTPS://git.example.com/org/repo//a/?ref=v1&timeout=90s&submodules=false", RemoteBase{"https://git.example.com/org/repo", "a", "v1"}},
		{"https://git.example.com:8443/org/repo//a", RemoteBase{"https://git.example.com:8443/org/repo", "a", "HEAD"}},
		{"http://127.0.0.1:3000/org/repo.git//a?ref=v1", RemoteBase{"http://127.0.0.1:3000/org/repo.git", "a", "v1"}},
		{"git::https://git.example.com/org/repo/deploy?ref=v1", RemoteBase{"https://git.example.com/org/repo", "deploy", "v1"}},
		{"GIT::https://git.example.com/org/repo//deploy", RemoteBase{"https://git.example.com/org/repo", "deploy", "HEAD"}},
		{"ssh://git@git.example.com/org/repo.git//deploy?ref=v1", RemoteBase{"ssh://git@git.example.com/org/repo.git", "deploy", "v1"}},
		{"ssh://git.example.com:2222/org/repo//deploy", RemoteBase{"ssh://git.example.com:2222/org/repo", "deploy", "HEAD"}},
		{"git@git.example.com:org/repo.git//deploy?ref=v1", RemoteBase{"git@git.example.com:org/repo.git", "deploy", "v1"}},
		{"git@git.example.com:org/repo/deploy", RemoteBase{"git@git.example.com:org/repo", "deploy", "HEAD"}},
		{"github.com/org/repo/deploy/base?ref=main", RemoteBase{"https://github.com/org/repo", "deploy/base", "main"}},
		{"github.com/org/repo", RemoteBase{"https://github.com/org/repo", ".", "HEAD"}},
		{"github.com:org/repo.git//x", RemoteBase{"git@github.com:org/repo.git", "x", "HEAD"}},
		{"https://github.com/kubernetes-sigs/kustomize/examples/multibases?ref=v1.0.6", RemoteBase{"https://github.com/kubernetes-sigs/kustomize", "examples/multibases", "v1.0.6"}},
		{"https://dev.azure.com/org/project/_git/repo/deploy?ref=main", RemoteBase{"https://dev.azure.com/org/project/_git/repo", "deploy", "main"}},
		{" https://git.example.com/org/repo//a ", RemoteBase{"https://git.example.com/org/repo", "a", "HEAD"}},
	}
	for _, tc := range ok {
		got, err := ParseRemoteBase(tc.in)
		if err != nil {
			t.Errorf("ParseRemoteBase(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseRemoteBase(%q) (-want +got):\n%s", tc.in, diff)
		}
	}

	refused := []struct{ in, why string }{
		{"https://user:secret@git.example.com/org/repo//a", "credentials in the URL"},
		{"https://ghp_token@git.example.com/org/repo//a", "credentials in the URL"},
		{"ssh://git:secret@git.example.com/org/repo//a", "password in the URL"},
		{"file:///srv/repo//a", "file:// URLs and local paths"},
		{"FILE:///srv/repo", "file:// URLs and local paths"},
		{"git::file:///srv/repo", "file:// URLs and local paths"},
		{"git::/srv/repo", "local paths"},
		{"s3://bucket/org/repo//a", `scheme "s3"`},
		{"git://git.example.com/org/repo//a", `scheme "git"`},
		{"https://git.example.com/org/repo//../../etc", "leaves the repository"},
		{"https://git.example.com/org/repo/../other//a", "leaves the repository"},
		{"git@git.example.com:org/repo//a/../../..", "leaves the repository"},
		{"https://raw.example.com/org/repo/main/deploy.yaml", "not a git repository"},
		{"https://git.example.com/org/repo//a?rev=v1", `query parameter "rev"`},
		{"https://git.example.com/org/repo//a?ref=--upload-pack=x", "not a branch, tag or commit"},
		{"https://git.example.com/org/repo//a#frag", "fragment"},
		{"https:///org/repo//a", "no host"},
		{"https://git.example.com/repo", "not a git repository"},
		{"github.com/org", "no repository"},
		{"https://git.example.com/org/repo//a b", "spaces or control"},
	}
	for _, tc := range refused {
		_, err := ParseRemoteBase(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParseRemoteBase(%q) = %v, want an error saying %q", tc.in, err, tc.why)
		}
	}
}
