//go:build !unit

package ha

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/hub/internal/store/kubestore"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// changeEvents reads url's event stream (GET /api/v1/events) with token
// and signals each change event.
func changeEvents(t *testing.T, url, token string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream answered %d", resp.StatusCode)
	}
	ch := make(chan struct{}, 64)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: change" {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch
}

func getJSON(t *testing.T, url, token string, into any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}

// untilShown runs action, then re-reads what a client shows on each
// change event of events that follows, as the web UI does, until shown
// holds; it fails when no change event makes it hold within the
// deadline.
func untilShown(t *testing.T, events <-chan struct{}, what string, action func(), shown func() error) {
	t.Helper()
	for len(events) > 0 {
		<-events // before the action
	}
	action()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	last := fmt.Errorf("no change event yet")
	for last != nil {
		select {
		case <-events:
			last = shown()
		case <-deadline.C:
			t.Fatalf("%s: no change event made it show: %v", what, last)
		}
	}
}

// TestEventStreamAcrossReplicas: a client of replica r2's event stream
// (a real HTTP client reading server-sent events) is told, by change
// events, of what replica r1 records: an agent attaching to r1, its
// status, its stream ending.
func TestEventStreamAcrossReplicas(t *testing.T) {
	cfg, ns := apiServer(t)
	ctx := t.Context()
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "config")
	appsDir := filepath.Join(dir, "apps")
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := repo.Write(configMap("v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("v1"); err != nil {
		t.Fatal(err)
	}
	app := fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source: {repoURL: %s, targetRevision: main, path: web}
  destination: {namespace: web, clusters: [x]}
  syncPolicy: {automated: {prune: true}}
`, repo.URL)
	if err := os.WriteFile(filepath.Join(appsDir, "web.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	seed, err := kubestore.New(cfg, kubestore.Options{Namespace: ns}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	if err := seed.CreateCluster(ctx, store.Cluster{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	token, _, err := seed.CreateAPIToken(ctx, "admin", store.RoleAdmin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := startHub(t, cfg, ns, appsDir, "r1", ca), startHub(t, cfg, ns, appsDir, "r2", ca)
	everywhere(t, []*hub{r1, r2}, "rendered", func(h *hub) error {
		if h.digest("x") == "" || h.r.Ready() != nil {
			return fmt.Errorf("not rendered or not ready")
		}
		return nil
	})
	events := changeEvents(t, r2.api.URL, token)
	cluster := func() api.ClusterView {
		var c api.ClusterView
		getJSON(t, r2.api.URL+"/api/v1/clusters/x", token, &c)
		return c
	}

	// x's agent attaches to r1.
	var sess *fleet.Session
	untilShown(t, events, "x connected to r1, seen on r2", func() { sess = r1.fl.Attach("x", nil) }, func() error {
		if c := cluster(); !c.Connected {
			return fmt.Errorf("r2 shows x %+v", c)
		}
		return nil
	})
	// It reports web Degraded; r1 records the status.
	st := &apiv1alpha1.AppStatus{App: "web", Digest: r1.digest("x"), Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_DEGRADED}
	report := func() {
		r1.fl.Report("x", st)
		if err := r1.st.PutStatus(ctx, "x", st); err != nil {
			t.Error(err)
		}
	}
	untilShown(t, events, "x's status recorded by r1, seen on r2", report, func() error {
		var a api.AppView
		getJSON(t, r2.api.URL+"/api/v1/apps/web", token, &a)
		if c := a.Cluster("x"); c == nil || c.Health != "Degraded" || !c.Connected {
			return fmt.Errorf("r2 shows web on x %+v", c)
		}
		return nil
	})
	// The stream ends on r1.
	untilShown(t, events, "x disconnected from r1, seen on r2", sess.Close, func() error {
		if c := cluster(); c.Connected || c.LastSeen.IsZero() {
			return fmt.Errorf("r2 shows x %+v", c)
		}
		return nil
	})
}
