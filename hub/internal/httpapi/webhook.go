package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// maxWebhookBytes bounds a webhook body.
const maxWebhookBytes = 4 << 20

// webhookPayload holds the repository URL fields of the four providers.
type webhookPayload struct {
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
func (a *API) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBytes+1))
	if err != nil || len(body) > maxWebhookBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "webhook body too large or unreadable")
		return
	}
	provider, ok := a.verifyWebhook(r, body)
	if !ok {
		a.d.Log.Warn("webhook refused: bad signature", "provider", provider, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "webhook signature or token does not match the configured secret")
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
		if u != "" && a.d.Git.Refresh(u) {
			matched = true
		}
	}
	a.d.Log.Info("webhook", "provider", provider, "repo", gitsource.Redact(firstNonEmpty(urls)), "tracked", matched)
	a.d.Controller.Trigger()
	writeJSON(w, http.StatusAccepted, map[string]any{"provider": provider, "matched": matched})
}

// verifyWebhook identifies the provider by its headers and checks its
// signature. With no secret configured every webhook is accepted.
func (a *API) verifyWebhook(r *http.Request, body []byte) (string, bool) {
	secret := a.d.WebhookSecret
	h := r.Header
	switch {
	case h.Get("X-Gitlab-Event") != "" || h.Get("X-Gitlab-Token") != "":
		return "gitlab", len(secret) == 0 || subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), secret) == 1
	case h.Get("X-Gitea-Event") != "" || h.Get("X-Gitea-Signature") != "":
		return "gitea", len(secret) == 0 || hmacHex(secret, body, h.Get("X-Gitea-Signature"))
	case h.Get("X-Gogs-Event") != "" || h.Get("X-Gogs-Signature") != "":
		return "gogs", len(secret) == 0 || hmacHex(secret, body, h.Get("X-Gogs-Signature"))
	case h.Get("X-GitHub-Event") != "":
		return "github", len(secret) == 0 || hmacHex(secret, body, strings.TrimPrefix(h.Get("X-Hub-Signature-256"), "sha256="))
	case h.Get("X-Event-Key") != "": // Bitbucket Cloud and Server
		return "bitbucket", len(secret) == 0 || hmacHex(secret, body, strings.TrimPrefix(h.Get("X-Hub-Signature"), "sha256="))
	}
	return "unknown", len(secret) == 0
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
