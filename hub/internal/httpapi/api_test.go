package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// call makes one request and decodes a JSON answer into out (if not nil).
func call(t *testing.T, h *apitest.Hub, token, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.Server.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.Server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s → %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return resp.StatusCode
}

func TestPagination(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	ctx := context.Background()
	for i := range 5 {
		if err := h.Store.CreateCluster(ctx, store.Cluster{Name: fmt.Sprintf("extra-%d", i)}); err != nil {
			t.Fatal(err)
		}
		if err := h.Store.AppendAudit(ctx, store.AuditEntry{Action: "test", Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Every list walks page by page to the same items as one big page.
	for _, path := range []string{"/api/v1/clusters", "/api/v1/apps", "/api/v1/audit", "/api/v1/tokens"} {
		t.Run(path, func(t *testing.T) {
			var all api.ListResponse[map[string]any]
			if code := call(t, h, h.AdminToken, "GET", path+"?limit=1000", nil, &all); code != 200 {
				t.Fatalf("GET %s: %d", path, code)
			}
			if all.Next != "" || len(all.Items) < 2 {
				t.Fatalf("GET %s: want ≥2 items on one page, got %d (next %q)", path, len(all.Items), all.Next)
			}
			var paged []map[string]any
			after, pages := "", 0
			for {
				var p api.ListResponse[map[string]any]
				q := path + "?limit=2"
				if after != "" {
					q += "&after=" + after
				}
				if code := call(t, h, h.AdminToken, "GET", q, nil, &p); code != 200 {
					t.Fatalf("GET %s: %d", q, code)
				}
				if len(p.Items) > 2 {
					t.Fatalf("GET %s: %d items on a page of 2", q, len(p.Items))
				}
				paged = append(paged, p.Items...)
				pages++
				if p.Next == "" {
					break
				}
				after = p.Next
			}
			if want := (len(all.Items) + 1) / 2; pages != want {
				t.Errorf("pages: got %d, want %d", pages, want)
			}
			if d := cmp.Diff(all.Items, paged); d != "" {
				t.Errorf("paged items differ from one page (-all +paged):\n%s", d)
			}
		})
	}
	if code := call(t, h, h.AdminToken, "GET", "/api/v1/clusters?after=!!bad", nil, nil); code != 400 {
		t.Errorf("bad cursor: got %d, want 400", code)
	}
	if code := call(t, h, h.AdminToken, "GET", "/api/v1/clusters?limit=x", nil, nil); code != 400 {
		t.Errorf("bad limit: got %d, want 400", code)
	}
}

func TestTokens(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	// A read-only token reads but is refused every change, and nothing is
	// audited for a refused call.
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps", nil, nil); code != 200 {
		t.Errorf("read-only GET apps: %d", code)
	}
	changes := []struct{ method, path string }{
		{"POST", "/api/v1/clusters"},
		{"DELETE", "/api/v1/clusters/prod-eu-1"},
		{"PATCH", "/api/v1/clusters/prod-eu-1/labels"},
		{"POST", "/api/v1/apps/guestbook/sync"},
		{"POST", "/api/v1/apps/guestbook/rollback"},
		{"POST", "/api/v1/apps/guestbook/unpin"},
		{"POST", "/api/v1/refresh"},
		{"POST", "/api/v1/tokens"},
		{"GET", "/api/v1/tokens"},
	}
	for _, c := range changes {
		if code := call(t, h, h.ReadOnlyToken, c.method, c.path, map[string]any{}, nil); code != http.StatusForbidden {
			t.Errorf("read-only %s %s: got %d, want 403", c.method, c.path, code)
		}
	}
	var audit api.ListResponse[api.AuditEntry]
	call(t, h, h.AdminToken, "GET", "/api/v1/audit", nil, &audit)
	if len(audit.Items) != 0 {
		t.Errorf("refused calls were audited: %+v", audit.Items)
	}
	for _, tok := range []string{"", "flt_0000000000000000_nope", "garbage"} {
		if code := call(t, h, tok, "GET", "/api/v1/apps", nil, nil); code != http.StatusUnauthorized {
			t.Errorf("token %q: got %d, want 401", tok, code)
		}
	}

	// Create, use, list and delete a read-only token.
	var created api.CreateTokenResponse
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/tokens", api.CreateTokenRequest{Name: "ci"}, &created); code != http.StatusCreated {
		t.Fatalf("create token: %d", code)
	}
	if created.Role != store.RoleReadOnly || created.Token == "" {
		t.Fatalf("created token: %+v", created)
	}
	var who api.WhoamiResponse
	call(t, h, created.Token, "GET", "/api/v1/whoami", nil, &who)
	if d := cmp.Diff(api.WhoamiResponse{Name: "ci", Role: "readonly", ExpiresAt: created.ExpiresAt}, who); d != "" {
		t.Errorf("whoami (-want +got):\n%s", d)
	}
	if code := call(t, h, created.Token, "POST", "/api/v1/apps/guestbook/sync", nil, nil); code != http.StatusForbidden {
		t.Errorf("new read-only token syncing: got %d, want 403", code)
	}
	var list api.ListResponse[api.TokenView]
	call(t, h, h.AdminToken, "GET", "/api/v1/tokens", nil, &list)
	var names []string
	for _, tv := range list.Items {
		names = append(names, tv.Name+"/"+tv.Role)
	}
	if d := cmp.Diff([]string{"admin/admin", "ci/readonly", "viewer/readonly"}, sortedCopy(names)); d != "" {
		t.Errorf("tokens (-want +got):\n%s", d)
	}
	if code := call(t, h, h.AdminToken, "DELETE", "/api/v1/tokens/"+created.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("delete token: %d", code)
	}
	if code := call(t, h, created.Token, "GET", "/api/v1/apps", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("deleted token: got %d, want 401", code)
	}
	call(t, h, h.AdminToken, "GET", "/api/v1/audit", nil, &audit)
	var actions []string
	for _, e := range audit.Items {
		actions = append(actions, e.Actor+" "+e.Action+" "+e.Target)
	}
	if d := cmp.Diff([]string{"admin token.delete " + created.ID, "admin token.create ci"}, actions); d != "" {
		t.Errorf("audit (-want +got):\n%s", d)
	}
}

func sortedCopy(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func appView(t *testing.T, h *apitest.Hub, name string) api.AppView {
	t.Helper()
	var v api.AppView
	if code := call(t, h, h.AdminToken, "GET", "/api/v1/apps/"+name, nil, &v); code != 200 {
		t.Fatalf("get app %s: %d", name, code)
	}
	return v
}

func clusterOf(v api.AppView, cluster string) api.AppClusterView {
	for _, cv := range v.Clusters {
		if cv.Cluster == cluster {
			return cv
		}
	}
	return api.AppClusterView{}
}

func TestSyncDiffHistoryRollback(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	for c := range apitest.Clusters {
		h.Connect(t, c)
	}
	old, cur := h.Repo.Commits[0], h.Repo.Commits[1]

	// billing is manual: OutOfSync, with a drift diff per object and a
	// diff from the agent, until synced.
	v := appView(t, h, "billing")
	if v.Sync != "OutOfSync" || clusterOf(v, "staging-1").Objects[0].Diff == "" {
		t.Fatalf("billing before sync: %+v", v)
	}
	var diff api.DiffResponse
	if code := call(t, h, h.ReadOnlyToken, "GET", "/api/v1/apps/billing/diff?cluster=staging-1", nil, &diff); code != 200 {
		t.Fatalf("diff: %d", code)
	}
	if len(diff.Clusters) != 1 || !diff.Clusters[0].OK || diff.Clusters[0].Summary != "1 objects differ" || !strings.Contains(diff.Clusters[0].Diff, "ConfigMap") {
		t.Errorf("diff: %+v", diff)
	}
	var sr api.SyncResponse
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/billing/sync", api.SyncRequest{Cluster: "staging-1"}, &sr); code != http.StatusAccepted {
		t.Fatalf("sync: %d", code)
	}
	h.WaitFor(t, 10*time.Second, "billing Synced on staging-1", func() bool {
		return clusterOf(appView(t, h, "billing"), "staging-1").Sync == "Synced"
	})
	var hist api.ListResponse[api.HistoryEntry]
	call(t, h, h.AdminToken, "GET", "/api/v1/apps/billing/history", nil, &hist)
	if len(hist.Items) != 1 || hist.Items[0].InitiatedBy != "admin" || hist.Items[0].Cluster != "staging-1" {
		t.Errorf("billing history: %+v", hist.Items)
	}

	// guestbook is automated and runs the current commit everywhere.
	h.WaitFor(t, 10*time.Second, "guestbook Synced", func() bool { return appView(t, h, "guestbook").Sync == "Synced" })
	call(t, h, h.AdminToken, "GET", "/api/v1/clusters/prod-eu-1/history?app=guestbook", nil, &hist)
	if len(hist.Items) != 1 || hist.Items[0].Revision != cur || hist.Items[0].InitiatedBy != "automated" {
		t.Fatalf("guestbook history on prod-eu-1: %+v", hist.Items)
	}

	// Roll prod-eu-1 back to the first commit: pinned, applied once by a
	// SYNC from the caller, auto-sync suspended.
	var rb api.RollbackResponse
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/guestbook/rollback", api.RollbackRequest{Revision: old, Cluster: "prod-eu-1"}, &rb); code != http.StatusAccepted {
		t.Fatalf("rollback: %d", code)
	}
	if len(rb.Targets) != 1 || rb.Targets[0].Sync != "sent" {
		t.Fatalf("rollback: %+v", rb)
	}
	h.WaitFor(t, 10*time.Second, "guestbook rolled back on prod-eu-1", func() bool {
		cv := clusterOf(appView(t, h, "guestbook"), "prod-eu-1")
		return cv.Sync == "Synced" && cv.ObservedRev == old
	})
	cv := clusterOf(appView(t, h, "guestbook"), "prod-eu-1")
	if cv.Pinned != old || cv.LastOperation.InitiatedBy != "admin" {
		t.Errorf("after rollback: pinned %q, last operation %+v", cv.Pinned, cv.LastOperation)
	}
	if other := clusterOf(appView(t, h, "guestbook"), "prod-us-1"); other.ObservedRev != cur || other.Pinned != "" {
		t.Errorf("prod-us-1 changed by a rollback of prod-eu-1: %+v", other)
	}
	bundle := h.Fleet.DesiredOf("prod-eu-1")["guestbook"]
	if bundle.GetSyncPolicy().GetAutomated() || bundle.GetSyncPolicy().GetSelfHeal() {
		t.Errorf("pinned bundle keeps auto-sync: %v", bundle.GetSyncPolicy())
	}

	// Rollback by history entry of another app is refused.
	call(t, h, h.AdminToken, "GET", "/api/v1/apps/billing/history", nil, &hist)
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/guestbook/rollback", api.RollbackRequest{HistoryID: hist.Items[0].ID}, nil); code != http.StatusBadRequest {
		t.Errorf("rollback to another app's history: %d", code)
	}
	// An unknown revision is refused and leaves no pin.
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/guestbook/rollback", api.RollbackRequest{Revision: "no-such-branch", Cluster: "prod-us-1"}, nil); code != http.StatusUnprocessableEntity {
		t.Errorf("rollback to unknown revision: %d", code)
	}
	h.WaitFor(t, 10*time.Second, "prod-us-1 unpinned again", func() bool {
		return clusterOf(appView(t, h, "guestbook"), "prod-us-1").Pinned == ""
	})

	// Unpin: auto-sync resumes and the agent returns to the current commit.
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/guestbook/unpin", api.UnpinRequest{Cluster: "prod-eu-1"}, nil); code != http.StatusAccepted {
		t.Fatalf("unpin: %d", code)
	}
	h.WaitFor(t, 10*time.Second, "guestbook back on the current commit", func() bool {
		cv := clusterOf(appView(t, h, "guestbook"), "prod-eu-1")
		return cv.Sync == "Synced" && cv.ObservedRev == cur && cv.Pinned == ""
	})
	if code := call(t, h, h.AdminToken, "POST", "/api/v1/apps/guestbook/unpin", nil, nil); code != http.StatusConflict {
		t.Errorf("unpin of an unpinned app: %d", code)
	}
	call(t, h, h.AdminToken, "GET", "/api/v1/apps/guestbook/history?cluster=prod-eu-1", nil, &hist)
	var got []string
	for _, e := range hist.Items {
		got = append(got, e.Revision[:7]+" "+e.InitiatedBy)
	}
	if d := cmp.Diff([]string{cur[:7] + " automated", old[:7] + " admin", cur[:7] + " automated"}, got); d != "" {
		t.Errorf("history of guestbook on prod-eu-1 (-want +got):\n%s", d)
	}

	// Unknown names answer 404 with the name.
	for _, p := range []string{"/api/v1/apps/nope", "/api/v1/apps/nope/history", "/api/v1/clusters/nope", "/api/v1/apps/guestbook/diff?cluster=nope"} {
		if code := call(t, h, h.AdminToken, "GET", p, nil, nil); code != 404 {
			t.Errorf("GET %s: got %d, want 404", p, code)
		}
	}
}

func TestEvents(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.Server.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.ReadOnlyToken)
	resp, err := h.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() string {
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				return d
			}
		}
		t.Fatalf("event stream ended: %v", sc.Err())
		return ""
	}
	if d := next(); d != `{"seq":1}` {
		t.Errorf("first event %q", d)
	}
	h.Connect(t, "staging-1") // a connection and a status report
	if d := next(); d != `{"seq":2}` {
		t.Errorf("second event %q", d)
	}
}
