package harness

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// Hub is a running flotilla-hub process.
type Hub struct {
	*Proc
	BinDir    string
	StateDir  string
	AgentAddr string
	HTTPURL   string
	Token     string
	// WebhookSecret signs PushWebhook's events (the hub refuses unsigned
	// ones); empty when the test passed its own --webhook-secret-file.
	WebhookSecret string
	// Client talks to the hub's HTTP API (it trusts TLSCertFile's
	// certificate when the hub serves HTTPS).
	Client *http.Client
	args   []string
	dir    string
}

// HubOptions configure StartHub.
type HubOptions struct {
	AppsDir      string
	PollInterval time.Duration
	// HTTPAddr is the host:port of the HTTP API (default: a free loopback
	// port), for tests that must name the hub's URL before it starts.
	HTTPAddr string
	// TLSCertFile and TLSKeyFile make the hub serve HTTPS
	// (--http-tls-cert-file); the certificate must be valid for the
	// HTTP address and is trusted as a root by Hub.Client.
	TLSCertFile, TLSKeyFile string
	Extra                   []string
}

// StartHub starts flotilla-hub from binDir with its state under dir and
// waits until it is ready. It allows http:// repos (the test git server is
// plain http); pass --allow-insecure-http-repos=false in Extra to refuse
// them.
func StartHub(ctx context.Context, binDir, dir string, o HubOptions) (*Hub, error) {
	agentAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr := o.HTTPAddr
	if httpAddr == "" {
		if httpAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Hour
	}
	h := &Hub{BinDir: binDir, StateDir: filepath.Join(dir, "hub-state"), AgentAddr: agentAddr, HTTPURL: "http://" + httpAddr, dir: dir, Client: apiClient}
	if o.TLSCertFile != "" {
		pem, err := os.ReadFile(o.TLSCertFile)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", o.TLSCertFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
		h.HTTPURL, h.Client = "https://"+httpAddr, &http.Client{Transport: tr, Timeout: apiClient.Timeout}
		o.Extra = append([]string{"--http-tls-cert-file", o.TLSCertFile, "--http-tls-key-file", o.TLSKeyFile}, o.Extra...)
	}
	if !slices.Contains(o.Extra, "--webhook-secret-file") {
		h.WebhookSecret = rand.Text()
		f := filepath.Join(dir, "webhook-secret")
		if err := os.WriteFile(f, []byte(h.WebhookSecret), 0o600); err != nil {
			return nil, err
		}
		o.Extra = append([]string{"--webhook-secret-file", f}, o.Extra...)
	}
	h.args = append([]string{
		"--state-dir", h.StateDir, "--agent-listen", agentAddr, "--http-listen", httpAddr,
		"--apps-dir", o.AppsDir, "--poll-interval", o.PollInterval.String(), "--resync", "2s",
		"--log-level", "debug", "--allow-insecure-http-repos",
	}, o.Extra...)
	if err := h.start(ctx); err != nil {
		return nil, err
	}
	// The hub removes its admin-token file at the token's first use; the
	// harness keeps a copy beside the state dir for later starts on it.
	kept := filepath.Join(dir, "harness-admin-token")
	tok, err := os.ReadFile(filepath.Join(h.StateDir, "admin-token"))
	if errors.Is(err, fs.ErrNotExist) {
		tok, err = os.ReadFile(kept)
	}
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if err := os.WriteFile(kept, tok, 0o600); err != nil {
		return nil, err
	}
	h.Token = strings.TrimSpace(string(tok))
	return h, nil
}

func (h *Hub) start(ctx context.Context) error {
	p, err := StartProc("hub", h.dir, filepath.Join(h.BinDir, "flotilla-hub"), h.args, nil)
	if err != nil {
		return err
	}
	h.Proc = p
	return Eventually(ctx, 60*time.Second, 50*time.Millisecond, func() error {
		if done, err := p.Exited(); done {
			return fmt.Errorf("hub exited: %v\n%s", err, p.Tail(4000))
		}
		resp, err := h.Client.Get(h.HTTPURL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

// Restart starts the hub again on the same ports and state (after Kill or
// Stop).
func (h *Hub) Restart(ctx context.Context) error { return h.start(ctx) }

// CLI runs the flotilla CLI against this hub and returns its stdout.
func (h *Hub) CLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(h.BinDir, "flotilla"), append([]string{"--server", h.HTTPURL, "--token", h.Token}, args...)...)
	cmd.Env = append(os.Environ(), "FLOTILLA_CONFIG="+filepath.Join(h.dir, "cli-config.json"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("flotilla %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// Join is what an agent needs to enrol: the answer of `flotilla cluster
// add -o json` (an alias, so that agent tests need not name the hub's
// package).
type Join = api.JoinResponse

// AddCluster registers a cluster through the CLI and returns its join data.
func (h *Hub) AddCluster(ctx context.Context, name string, labels ...string) (Join, error) {
	args := []string{"cluster", "add", name, "-o", "json"}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	out, err := h.CLI(ctx, args...)
	if err != nil {
		return Join{}, err
	}
	var j Join
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return Join{}, fmt.Errorf("cluster add output %q: %w", out, err)
	}
	return j, nil
}

// NewToken issues a new join token for a registered cluster through the
// CLI (`flotilla cluster token NAME`).
func (h *Hub) NewToken(ctx context.Context, name string) (Join, error) {
	out, err := h.CLI(ctx, "cluster", "token", name, "-o", "json")
	if err != nil {
		return Join{}, err
	}
	var j Join
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return Join{}, fmt.Errorf("cluster token output %q: %w", out, err)
	}
	return j, nil
}

func (h *Hub) Apps(ctx context.Context) ([]api.AppView, error) {
	out, err := h.CLI(ctx, "app", "list", "-o", "json")
	if err != nil {
		return nil, err
	}
	var apps []api.AppView
	if err := json.Unmarshal([]byte(out), &apps); err != nil {
		return nil, fmt.Errorf("app list output: %w", err)
	}
	return apps, nil
}

// App returns one app with its objects through `flotilla app get -o json`.
func (h *Hub) App(ctx context.Context, name string) (api.AppView, error) {
	out, err := h.CLI(ctx, "app", "get", name, "-o", "json")
	if err != nil {
		return api.AppView{}, err
	}
	var a api.AppView
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		return api.AppView{}, fmt.Errorf("app get output: %w", err)
	}
	return a, nil
}

// WaitSynced waits until app is Synced (and Healthy if healthy) on every
// cluster in clusters, at revision when it is not "".
func (h *Hub) WaitSynced(ctx context.Context, timeout time.Duration, app, revision string, healthy bool, clusters ...string) error {
	return Eventually(ctx, timeout, 100*time.Millisecond, func() error {
		apps, err := h.Apps(ctx)
		if err != nil {
			return err
		}
		for _, a := range apps {
			if a.Name != app {
				continue
			}
			if revision != "" && a.Revision != revision {
				return fmt.Errorf("app %s at revision %s, want %s", app, a.Revision, revision)
			}
			got := map[string]api.AppClusterView{}
			for _, c := range a.Clusters {
				got[c.Cluster] = c
			}
			for _, c := range clusters {
				ac, ok := got[c]
				if !ok {
					return fmt.Errorf("app %s does not target cluster %s", app, c)
				}
				if ac.Sync != "Synced" || (healthy && ac.Health != "Healthy") {
					return fmt.Errorf("app %s on %s: %s/%s %s%s", app, c, ac.Sync, ac.Health, ac.Error, ac.Message)
				}
			}
			return nil
		}
		return fmt.Errorf("app %s not listed", app)
	})
}
