package engines

import (
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseRemoteBase reads the repository URL forms Argo CD users write
// in kustomizations, and refuses the ones the hub must not fetch.
func TestParseRemoteBase(t *testing.T) {
	ok := []struct {
		in   string
		want render.RemoteBase
	}{
		{"https://git.example.com/org/repo//deploy/base?ref=v1.2.0", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: "deploy/base", Ref: "v1.2.0"}},
		{"https://git.example.com/org/repo//deploy/base?version=v1.2.0", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: "deploy/base", Ref: "v1.2.0"}},
		{"https://git.example.com/org/repo?ref=main", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: ".", Ref: "main"}},
		{"https://git.example.com/org/repo.git", render.RemoteBase{RepoURL: "https://git.example.com/org/repo.git", Path: ".", Ref: "HEAD"}},
		{"https://git.example.com/org/repo.git/deploy?ref=abc123", render.RemoteBase{RepoURL: "https://git.example.com/org/repo.git", Path: "deploy", Ref: "abc123"}},
		{"https://git.example.com/group/sub/repo.git//x", render.RemoteBase{RepoURL: "https://git.example.com/group/sub/repo.git", Path: "x", Ref: "HEAD"}},
		{"https://git.example.com/org/repo.github-io//x", render.RemoteBase{RepoURL: "https://git.example.com/org/repo.github-io", Path: "x", Ref: "HEAD"}},
		{"https://git.example.com/org/repo/deploy?ref=v1", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: "deploy", Ref: "v1"}},
		{"HTTPS://git.example.com/org/repo//a/?ref=v1&timeout=90s&submodules=false", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: "a", Ref: "v1"}},
		{"https://git.example.com:8443/org/repo//a", render.RemoteBase{RepoURL: "https://git.example.com:8443/org/repo", Path: "a", Ref: "HEAD"}},
		{"http://127.0.0.1:3000/org/repo.git//a?ref=v1", render.RemoteBase{RepoURL: "http://127.0.0.1:3000/org/repo.git", Path: "a", Ref: "v1"}},
		{"git::https://git.example.com/org/repo/deploy?ref=v1", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: "deploy", Ref: "v1"}},
		{"GIT::https://git.example.com/org/repo//deploy", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: "deploy", Ref: "HEAD"}},
		{"ssh://git@git.example.com/org/repo.git//deploy?ref=v1", render.RemoteBase{RepoURL: "ssh://git@git.example.com/org/repo.git", Path: "deploy", Ref: "v1"}},
		{"ssh://git.example.com:2222/org/repo//deploy", render.RemoteBase{RepoURL: "ssh://git.example.com:2222/org/repo", Path: "deploy", Ref: "HEAD"}},
		{"git@git.example.com:org/repo.git//deploy?ref=v1", render.RemoteBase{RepoURL: "git@git.example.com:org/repo.git", Path: "deploy", Ref: "v1"}},
		{"git@git.example.com:org/repo/deploy", render.RemoteBase{RepoURL: "git@git.example.com:org/repo", Path: "deploy", Ref: "HEAD"}},
		{"github.com/org/repo/deploy/base?ref=main", render.RemoteBase{RepoURL: "https://github.com/org/repo", Path: "deploy/base", Ref: "main"}},
		{"github.com/org/repo", render.RemoteBase{RepoURL: "https://github.com/org/repo", Path: ".", Ref: "HEAD"}},
		{"github.com:org/repo.git//x", render.RemoteBase{RepoURL: "git@github.com:org/repo.git", Path: "x", Ref: "HEAD"}},
		{"https://github.com/kubernetes-sigs/kustomize/examples/multibases?ref=v1.0.6", render.RemoteBase{RepoURL: "https://github.com/kubernetes-sigs/kustomize", Path: "examples/multibases", Ref: "v1.0.6"}},
		{"https://dev.azure.com/org/project/_git/repo/deploy?ref=main", render.RemoteBase{RepoURL: "https://dev.azure.com/org/project/_git/repo", Path: "deploy", Ref: "main"}},
		{" https://git.example.com/org/repo//a ", render.RemoteBase{RepoURL: "https://git.example.com/org/repo", Path: "a", Ref: "HEAD"}},
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
