package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
)

// rolloutEvents reads the event stream and sends the type of every
// rollout event on the channel it returns.
func rolloutEvents(t *testing.T, h *apitest.Hub) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", h.Server.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.ReadOnlyToken)
	resp, err := h.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		rollout := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "event: rollout":
				rollout = true
			case rollout && strings.HasPrefix(line, "data: "):
				var e api.RolloutEvent
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
					t.Errorf("rollout event %q: %v", line, err)
				}
				out <- e.Type + " " + e.StepName
				rollout = false
			}
		}
	}()
	return out
}

// TestRolloutAPI: a new revision of an app with a rollout reaches
// prod-eu-1 and waits for an approval before prod-us-1, which keeps the
// previous revision and says why; the view, the actions (with their
// refusals), the event stream and the history show it.
func TestRolloutAPI(t *testing.T) {
	h := apitest.New(t, apitest.Options{Apps: map[string]string{"web.yaml": apitest.RolloutApp}})
	h.Connect(t, "prod-eu-1")
	h.Connect(t, "prod-us-1")
	events := rolloutEvents(t, h)
	var v api.RolloutView
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps/web/rollout", nil, &v); code != http.StatusOK || v.Phase != "Completed" {
		t.Fatalf("rollout of the first revision: %d %+v, want 200 Completed", code, v)
	}
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps/billing/rollout", nil, nil); code != http.StatusNotFound {
		t.Fatalf("rollout of an app without a strategy: %d, want 404", code)
	}

	h.WriteApp(t, "web.yaml", apitest.RolloutAppAtMain)
	call(t, h, h.AdminToken, "POST", "/api/v1/refresh", nil, nil)
	h.WaitFor(t, 20*time.Second, "web waiting for approval of step 2", func() bool {
		v, _ = h.Status.Rollout("web")
		return v.Phase == "WaitingApproval"
	})
	old, cur := h.Repo.Commits[0], h.Repo.Commits[1]
	var app api.AppView
	call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps/web", nil, &app)
	got := map[string]string{}
	for _, c := range app.Clusters {
		got[c.Cluster] = c.Revision[:7] + " " + c.Sync + " " + c.Rollout
	}
	want := map[string]string{"prod-eu-1": cur[:7] + " Synced ", "prod-us-1": old[:7] + " Synced waiting for step 2 (us)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("app view while step 2 waits (-want +got):\n%s", d)
	}
	if code := call(t, h, h.ReadOnlyToken, "POST", "/api/v1/apps/web/rollout/approve", nil, nil); code != http.StatusForbidden {
		t.Errorf("approve with a read-only token: %d, want 403", code)
	}
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/web/rollout/resume", nil, nil); code != http.StatusConflict {
		t.Errorf("resume of a rollout that is not paused: %d, want 409", code)
	}
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/web/rollout/jump", nil, nil); code != http.StatusBadRequest {
		t.Errorf("unknown action: %d, want 400", code)
	}
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/web/rollout/approve", nil, &v); code != http.StatusOK {
		t.Fatalf("approve: %d", code)
	}
	h.WaitFor(t, 20*time.Second, "web rolled out", func() bool {
		v, _ = h.Status.Rollout("web")
		return v.Phase == "Completed"
	})
	var steps []string
	for _, s := range v.Steps {
		for _, c := range s.Clusters {
			steps = append(steps, s.Name+" "+s.State+" "+c.Cluster+" "+c.Revision[:7]+" "+c.Health)
		}
	}
	if d := cmp.Diff([]string{"eu Done prod-eu-1 " + cur[:7] + " Healthy", "us Done prod-us-1 " + cur[:7] + " Healthy"}, steps); d != "" {
		t.Errorf("steps once completed (-want +got):\n%s", d)
	}
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/web/rollout/abort", nil, nil); code != http.StatusConflict {
		t.Errorf("abort of a completed rollout: %d, want 409", code)
	}

	var seen []string
	for len(seen) < 10 {
		select {
		case e := <-events:
			seen = append(seen, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("rollout events seen: %q", seen)
		}
	}
	wantEvents := []string{"RolloutStarted ", "StepStarted eu", "ClustersReached eu", "StepHealthy eu", "StepDone eu", "WaitingApproval us",
		"Approved us", "StepStarted us", "ClustersReached us", "StepHealthy us"}
	if d := cmp.Diff(wantEvents, seen); d != "" {
		t.Errorf("rollout events in the event stream (-want +got):\n%s", d)
	}

	var hist api.ListResponse[api.HistoryEntry]
	call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps/web/history?cluster=prod-eu-1", nil, &hist)
	var byRollout []string
	for _, e := range hist.Items {
		if e.InitiatedBy == "rollout" {
			byRollout = append(byRollout, e.Result+" "+e.Message)
		}
	}
	if d := cmp.Diff([]string{"Succeeded rollout: step 1 (eu) done"}, byRollout); d != "" {
		t.Errorf("history entries of the rollout on prod-eu-1 (-want +got):\n%s", d)
	}
}
