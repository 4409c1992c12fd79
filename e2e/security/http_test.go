//go:build !unit

package security

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Finding 9: a client that sends a request body a byte at a time holds a
// connection (and a goroutine) for ever when the server has no read
// timeout. The hub cuts it off, and keeps answering others meanwhile.
func TestHTTPSlowBodyCutOff(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	addr := strings.TrimPrefix(h.HTTPURL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The webhook endpoint reads its body (to check the signature over it).
	fmt.Fprintf(conn, "POST /api/webhook HTTP/1.1\r\nHost: %s\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 1000000\r\n\r\n", addr)
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn) // returns when the hub closes
		closed <- err
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(90 * time.Second)
	for {
		select {
		case <-closed: //nolint:errcheck // how the hub hung up does not matter
			// The hub hung up on the slow client; it still serves others.
			resp, err := http.Get(h.HTTPURL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return
		case <-tick.C:
			_, _ = conn.Write([]byte(" "))
			resp, err := http.Get(h.HTTPURL + "/healthz")
			if err != nil {
				t.Fatalf("API down while a slow client trickles: %v", err)
			}
			resp.Body.Close()
		case <-deadline:
			t.Fatal("a client sending its body a byte every 500 ms still holds its connection after 90 s")
		}
	}
}

// Finding 9: with no secret configured the hub accepted any webhook, and
// each made it list the named repository's refs with its credentials.
// Without a secret webhooks are refused; a body over the limit is refused
// without being read whole.
func TestHTTPWebhookNeedsSecret(t *testing.T) {
	t.Parallel()
	h := startHub(t, "", "--webhook-secret-file", "")
	body := `{"ref":"refs/heads/main","repository":{"clone_url":"https://git.example.com/x.git"}}`
	req, _ := http.NewRequestWithContext(t.Context(), "POST", h.HTTPURL+"/api/webhook", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned webhook to a hub without a secret: HTTP %d, want 403", resp.StatusCode)
	}

	// A hub with a secret: 100 MB streamed without a length is cut at the
	// limit; the hub's memory does not follow.
	signed := startHub(t, "")
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 1<<20)
		for range 100 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ = http.NewRequestWithContext(t.Context(), "POST", signed.HTTPURL+"/api/webhook", pr)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256=00")
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("100 MB webhook: HTTP %d, want 413", resp.StatusCode)
		}
	} // else: the hub closed the connection while the body was still coming
	if hwm := vmHWM(t, signed.PID()); hwm > 200<<10 {
		t.Errorf("hub peak RSS %d MiB after a 100 MB webhook", hwm>>10)
	}
}

// Finding 10: /metrics was public (app names, clusters, revisions).
func TestHTTPMetricsNeedToken(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	get := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", h.HTTPURL+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(""); code != http.StatusUnauthorized || strings.Contains(body, "flotilla_") {
		t.Errorf("/metrics without a token: HTTP %d", code)
	}
	if code, body := get(h.Token); code != http.StatusOK || !strings.Contains(body, "flotilla_hub_") {
		t.Errorf("/metrics with a token: HTTP %d", code)
	}
}

// Finding 10: the UI could be framed by any page (clickjacking).
func TestHTTPUINotFramable(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	resp, err := http.Get(h.HTTPURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("UI Content-Security-Policy %q: no frame-ancestors 'none'", csp)
	}
	if xfo := resp.Header.Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("UI X-Frame-Options %q", xfo)
	}
}
