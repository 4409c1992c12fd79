package harness

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiClient is shared by the HTTP helpers: loopback only, keep-alive.
var apiClient = &http.Client{Timeout: 2 * time.Minute}

// DoJSON calls the hub's HTTP API with the admin token: in (when not nil)
// is sent as JSON and a 2xx answer is decoded into out (when not nil).
func (h *Hub) DoJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.HTTPURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+h.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// PushWebhook sends the hub a GitHub push event for repoURL, signed with
// the hub's webhook secret, as a git host does after a push.
func (h *Hub) PushWebhook(ctx context.Context, repoURL string) error {
	return h.PushWebhookAt(ctx, repoURL, "")
}

// PushWebhookAt is PushWebhook for a push that made main point at commit
// after (the event's "after", as GitHub sends it; "" leaves it out).
func (h *Hub) PushWebhookAt(ctx context.Context, repoURL, after string) error {
	req, err := h.webhookRequest(ctx, repoURL, after)
	if err != nil {
		return err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// WebhookRequest returns a GitHub push event for repoURL, signed with the
// hub's webhook secret (X-Hub-Signature-256) when it has one.
func (h *Hub) WebhookRequest(ctx context.Context, repoURL string) (*http.Request, error) {
	return h.webhookRequest(ctx, repoURL, "")
}

func (h *Hub) webhookRequest(ctx context.Context, repoURL, after string) (*http.Request, error) {
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","repository":{"clone_url":%q}}`, repoURL))
	if after != "" {
		body = []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"clone_url":%q}}`, after, repoURL))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.HTTPURL+"/api/webhook", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("Content-Type", "application/json")
	if h.WebhookSecret != "" {
		m := hmac.New(sha256.New, []byte(h.WebhookSecret))
		m.Write(body)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	return req, nil
}

// client is Client, or the default API client for a Hub made elsewhere.
func (h *Hub) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return apiClient
}
