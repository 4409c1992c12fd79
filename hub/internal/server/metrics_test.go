package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/ports"

	"github.com/hashicorp/go-hclog"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := ports.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestHubMetricsScrape runs the hub, registers a cluster through the API
// (the first use of the admin token, whose file is then removed) and
// scrapes /metrics for the metrics the hub owns: connected agents, bundle
// pushes, git poll and reconcile (render) durations, renders, and per-app
// sync and health. /healthz and /readyz answer too.
func TestHubMetricsScrape(t *testing.T) {
	dir := t.TempDir()
	apps := filepath.Join(dir, "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	app := "apiVersion: flotilla.dev/v1alpha1\nkind: Application\nmetadata: {name: web}\nspec:\n  source: {repoURL: " + filepath.Join(dir, "no-repo") +
		", targetRevision: main, path: web}\n  destination: {namespace: web, clusters: [c1]}\n"
	if err := os.WriteFile(filepath.Join(apps, "web.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.StateDir, o.AppsDir = filepath.Join(dir, "state"), apps
	o.AgentListen, o.HTTPListen = freeAddr(t), freeAddr(t)
	o.PollInterval = time.Hour
	o.RenderWorkerBinary = os.Args[0] // TestMain serves as flotilla-render
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, hclog.NewNullLogger()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	}()
	base := "http://" + o.HTTPListen
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Wait for the first reconcile (readyz), re-checking with a deadline.
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for code, _ := get("/readyz", ""); code != 200; code, _ = get("/readyz", "") {
		if time.Now().After(deadline) {
			t.Fatalf("hub not ready after 20s (last %d)", code)
		}
		select {
		case <-tick.C:
		case err := <-done:
			t.Fatalf("hub stopped: %v", err)
		}
	}
	if code, _ := get("/healthz", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	tok, err := os.ReadFile(filepath.Join(o.StateDir, AdminTokenFile))
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/clusters", strings.NewReader(`{"name":"c1"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("add cluster: %v %v", err, resp)
	}
	resp.Body.Close()
	// The first admin token's file goes at its first use; the token stays
	// valid (the scrapes below use it).
	if _, err := os.Stat(filepath.Join(o.StateDir, AdminTokenFile)); !os.IsNotExist(err) {
		t.Errorf("admin token file after the token's first use: %v, want it removed", err)
	}

	want := []string{
		"flotilla_hub_connected_agents 0",
		"flotilla_hub_bundle_pushes_total 0",
		"# TYPE flotilla_hub_git_poll_duration_seconds histogram",
		"flotilla_hub_reconcile_duration_seconds_count",
		"flotilla_hub_renders_total",
		"flotilla_hub_status_reports_total",
		`flotilla_app_sync_status{app="web",cluster="c1",status="`,
		`flotilla_app_health_status{app="web",cluster="c1",status="Unknown"} 1`,
	}
	// /metrics needs a token: without one nothing is shown.
	if code, body := get("/metrics", ""); code != http.StatusUnauthorized || strings.Contains(body, "flotilla_") {
		t.Fatalf("/metrics without a token: %d\n%s", code, grepFlotilla(body))
	}
	admin := strings.TrimSpace(string(tok))
	var body string
	for {
		_, body = get("/metrics", admin)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %q not found in /metrics:\n%s", missing, grepFlotilla(body))
		}
		<-tick.C
	}
}

func grepFlotilla(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, "flotilla") {
			out = append(out, l)
		}
	}
	return fmt.Sprint(strings.Join(out, "\n"))
}
