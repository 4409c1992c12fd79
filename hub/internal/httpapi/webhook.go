package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// maxWebhookBytes bounds a webhook body.
const maxWebhookBytes = 4 << 20

// webhookPayload holds the repository URL fields of the four providers,
// and the pushed ref and commit where the provider sends them at the top
// (GitHub, GitLab, Gitea, Gogs).
type webhookPayload struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Repository struct {
		CloneURL string `json:"clone_url"` // GitHub, Gitea, Gogs
		HTMLURL  string `json:"html_url"`
		SSHURL   string `json:"ssh_url"`
		Links    struct {
			HTML struct {
				Href string `json:"href"`
			} `json:"html"` // Bitbucket Cloud
		} `json:"links"`
	} `json:"repository"`
	Project struct { // GitLab
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		WebURL     string `json:"web_url"`
	} `json:"project"`
}

// webhook handles push events from GitHub, GitLab, Gitea/Gogs and
// Bitbucket: it checks the provider's signature or token against the
// configured secret and makes the hub poll the named repository at once.
// Without a configured secret webhooks are refused, unless
// Deps.AllowUnsignedWebhooks says otherwise. Nothing of the body is read
// before the request is known to be small enough, and a provider that
// authenticates with a header token (GitLab) is checked before the body is
// read at all.
func (a *API) webhook(w http.ResponseWriter, r *http.Request) {
	secret := a.d.WebhookSecret
	if len(secret) == 0 && !a.d.AllowUnsignedWebhooks {
		writeError(w, http.StatusForbidden, "webhooks are off: this hub has no webhook secret (set --webhook-secret-file and the same secret on the git host)")
		return
	}
	if r.ContentLength > maxWebhookBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("webhook body of %d bytes is over the limit of %d", r.ContentLength, maxWebhookBytes))
		return
	}
	provider, verify := webhookVerifier(r.Header, secret)
	if verify.header != nil && !verify.header() {
		a.refuseWebhook(w, r, provider)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("webhook body over the limit of %d bytes or unreadable", maxWebhookBytes))
		return
	}
	if verify.body != nil && !verify.body(body) {
		a.refuseWebhook(w, r, provider)
		return
	}
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		writeError(w, http.StatusBadRequest, "webhook payload: "+err.Error())
		return
	}
	urls := []string{p.Repository.CloneURL, p.Repository.HTMLURL, p.Repository.SSHURL, p.Repository.Links.HTML.Href,
		p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL}
	matched := false
	for _, u := range urls {
		if u != "" && a.refreshGit(u, gitsource.Push{Ref: p.Ref, After: p.After}) {
			matched = true
		}
	}
	a.d.Log.Info("webhook", "provider", provider, "repo", gitsource.Redact(firstNonEmpty(urls)), "tracked", matched)
	a.d.Controller.Trigger()
	writeJSON(w, http.StatusAccepted, api.WebhookResponse{Matched: matched, Provider: provider})
}

func (a *API) refuseWebhook(w http.ResponseWriter, r *http.Request, provider string) {
	a.d.Log.Warn("webhook refused: bad signature", "provider", provider, "remote", r.RemoteAddr)
	writeError(w, http.StatusUnauthorized, "webhook signature or token does not match the configured secret")
}

// webhookCheck verifies a webhook: header checks what the headers alone
// prove (before the body is read), body checks a signature over the body.
// Both nil: accepted (no secret configured and unsigned webhooks allowed).
type webhookCheck struct {
	header func() bool
	body   func([]byte) bool
}

// webhookVerifier identifies the provider by its headers and returns how
// to check its signature against secret (nil checks when secret is empty).
func webhookVerifier(h http.Header, secret []byte) (string, webhookCheck) {
	signed := func(sig string) webhookCheck {
		if len(secret) == 0 {
			return webhookCheck{}
		}
		return webhookCheck{body: func(b []byte) bool { return hmacHex(secret, b, sig) }}
	}
	switch {
	case h.Get("X-Gitlab-Event") != "" || h.Get("X-Gitlab-Token") != "":
		if len(secret) == 0 {
			return "gitlab", webhookCheck{}
		}
		return "gitlab", webhookCheck{header: func() bool {
			return subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), secret) == 1
		}}
	case h.Get("X-Gitea-Event") != "" || h.Get("X-Gitea-Signature") != "":
		return "gitea", signed(h.Get("X-Gitea-Signature"))
	case h.Get("X-Gogs-Event") != "" || h.Get("X-Gogs-Signature") != "":
		return "gogs", signed(h.Get("X-Gogs-Signature"))
	case h.Get("X-GitHub-Event") != "":
		return "github", signed(strings.TrimPrefix(h.Get("X-Hub-Signature-256"), "sha256="))
	case h.Get("X-Event-Key") != "": // Bitbucket Cloud and Server
		return "bitbucket", signed(strings.TrimPrefix(h.Get("X-Hub-Signature"), "sha256="))
	}
	if len(secret) == 0 {
		return "unknown", webhookCheck{}
	}
	return "unknown", webhookCheck{header: func() bool { return false }}
}

func hmacHex(secret, body []byte, sig string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil || len(got) == 0 {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func firstNonEmpty(xs []string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}
