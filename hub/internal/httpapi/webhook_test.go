package httpapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
)

const secret = "hook-s3cret"

func sign(body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// Each provider's push webhook, signed its own way, makes the hub poll the
// repository it names; a bad signature or token is refused.
func TestWebhookProviders(t *testing.T) {
	h := apitest.New(t, apitest.Options{WebhookSecret: secret})
	repo := h.Repo.URL
	type hook struct {
		name    string
		body    string
		headers func(body string) map[string]string
	}
	hooks := []hook{
		{"github", fmt.Sprintf(`{"ref":"refs/heads/main","repository":{"clone_url":%q}}`, repo), func(b string) map[string]string {
			return map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(b)}
		}},
		{"gitlab", fmt.Sprintf(`{"object_kind":"push","project":{"git_http_url":%q}}`, repo), func(string) map[string]string {
			return map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret}
		}},
		{"gitea", fmt.Sprintf(`{"ref":"refs/heads/main","repository":{"clone_url":%q}}`, repo), func(b string) map[string]string {
			return map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": sign(b)}
		}},
		{"gogs", fmt.Sprintf(`{"ref":"refs/heads/main","repository":{"clone_url":%q}}`, repo), func(b string) map[string]string {
			return map[string]string{"X-Gogs-Event": "push", "X-Gogs-Signature": sign(b)}
		}},
		{"bitbucket", fmt.Sprintf(`{"repository":{"links":{"html":{"href":%q}}}}`, repo), func(b string) map[string]string {
			return map[string]string{"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + sign(b)}
		}},
	}
	post := func(body string, headers map[string]string) (int, map[string]any) {
		req, err := http.NewRequest("POST", h.Server.URL+"/api/webhook", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for _, hk := range hooks {
		t.Run(hk.name, func(t *testing.T) {
			code, out := post(hk.body, hk.headers(hk.body))
			if code != http.StatusAccepted || out["provider"] != hk.name || out["matched"] != true {
				t.Fatalf("signed %s webhook: %d %v", hk.name, code, out)
			}
			// The same headers over another body: the signature no longer matches.
			tampered := strings.Replace(hk.body, "{", `{"x":1,`, 1)
			hdr := hk.headers(hk.body)
			if hk.name == "gitlab" {
				hdr["X-Gitlab-Token"] = "wrong"
			}
			if code, out := post(tampered, hdr); code != http.StatusUnauthorized {
				t.Fatalf("tampered %s webhook: %d %v", hk.name, code, out)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		if code, _ := post(hooks[0].body, map[string]string{"X-GitHub-Event": "push"}); code != http.StatusUnauthorized {
			t.Fatalf("unsigned webhook accepted: %d", code)
		}
	})
	t.Run("untracked repo", func(t *testing.T) {
		body := `{"repository":{"clone_url":"https://git.example.com/other.git"}}`
		code, out := post(body, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(body)})
		if code != http.StatusAccepted || out["matched"] != false {
			t.Fatalf("untracked repo: %d %v", code, out)
		}
	})
}

// Without a secret webhooks are refused (a flood of them would make the
// hub poll its repositories with its credentials), unless unsigned ones
// are allowed explicitly; a body announced over the limit is refused
// before it is read.
func TestWebhookWithoutSecret(t *testing.T) {
	body := `{"ref":"refs/heads/main","repository":{"clone_url":"https://git.example.com/x.git"}}`
	post := func(h *apitest.Hub, body string) int {
		req, err := http.NewRequest("POST", h.Server.URL+"/api/webhook", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-GitHub-Event", "push")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1 // the server may close before reading an oversize body
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	off := apitest.New(t, apitest.Options{})
	if code := post(off, body); code != http.StatusForbidden {
		t.Errorf("unsigned webhook to a hub without a secret: %d, want 403", code)
	}
	open := apitest.New(t, apitest.Options{AllowUnsignedWebhooks: true})
	if code := post(open, body); code != http.StatusAccepted {
		t.Errorf("unsigned webhook with unsigned webhooks allowed: %d, want 202", code)
	}
	big := strings.Repeat(" ", 5<<20) // the limit is 4 MiB
	if code := post(open, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("webhook over the limit: %d, want 413", code)
	}
}
