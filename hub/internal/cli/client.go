package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// Config is what `flotilla login` saves.
type Config struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// ConfigPath is where the CLI keeps its config: $FLOTILLA_CONFIG, or
// flotilla/config.json under the user config dir.
func ConfigPath() string {
	if p := os.Getenv("FLOTILLA_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "flotilla", "config.json")
}

func loadConfig() Config {
	var c Config
	b, err := os.ReadFile(ConfigPath())
	if err == nil {
		_ = json.Unmarshal(b, &c)
	}
	return c
}

func saveConfig(c Config) error {
	p := ConfigPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return os.WriteFile(p, b, 0o600)
}

// client talks to the hub's API.
type client struct {
	server string
	token  string
	http   *http.Client
}

// APIError is an error answer of the hub.
type APIError struct {
	Server  string
	Status  int
	Message string
}

func (e *APIError) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return fmt.Sprintf("the hub at %s refused the token: %s", e.Server, e.Message)
	case http.StatusForbidden:
		return fmt.Sprintf("not allowed: %s", e.Message)
	case http.StatusNotFound:
		return e.Message
	}
	return fmt.Sprintf("hub answered %d: %s", e.Status, e.Message)
}

// send makes one request and returns the response when the hub answered
// with a status below 300. Other answers become an *APIError, or an error
// saying the server is not a Flotilla hub.
func (c *client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	if c.server == "" {
		return nil, errors.New("no hub server: run `flotilla login --server URL --token TOKEN` or pass --server")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimRight(c.server, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("hub server %q: %w", c.server, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ctx.Err() == nil {
			return nil, fmt.Errorf("cannot reach the hub at %s: %v", c.server, ue.Err)
		}
		return nil, err
	}
	if resp.StatusCode < 300 {
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") &&
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") &&
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") &&
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/octet-stream") && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
			resp.Body.Close()
			return nil, fmt.Errorf("%s does not look like a Flotilla hub: %s %s answered %s", c.server, method, path, resp.Header.Get("Content-Type"))
		}
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.Error
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(data, &e) != nil || e.Error == "" {
		return nil, fmt.Errorf("%s does not look like a Flotilla hub: %s %s answered %d (%s)", c.server, method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return nil, &APIError{Server: c.server, Status: resp.StatusCode, Message: e.Error}
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the hub's answer to %s %s: %w", method, path, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("hub answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// events opens the hub's event stream. The channel gets a value per event
// and is closed when the stream or ctx ends.
func (c *client) events(ctx context.Context) (<-chan struct{}, error) {
	sc := &http.Client{Transport: c.http.Transport} // no overall timeout on a stream
	cc := *c
	cc.http = sc
	resp, err := cc.send(ctx, "GET", "/api/v1/events", nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan struct{}, 1)
	// The request's ctx ends the read when the caller is done.
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		r := bufio.NewScanner(resp.Body)
		for r.Scan() {
			if strings.HasPrefix(r.Text(), "data:") {
				select {
				case ch <- struct{}{}:
				default: // one pending event is enough: the reader re-reads everything
				}
			}
		}
	}()
	return ch, nil
}

func newClient(server, token string) *client {
	return &client{server: server, token: token, http: &http.Client{Timeout: 60 * time.Second}}
}
