package cli

import (
	"bytes"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// TestAppDetailHooks: `flotilla app get` lists the hooks of each cluster's
// last operation, with the generated name and whether the delete policy
// removed the hook; without hooks it prints no hook table.
func TestAppDetailHooks(t *testing.T) {
	op := &api.OperationView{Phase: "Succeeded", Hooks: []api.Hook{
		{Phase: "PreSync", Kind: "Job", Namespace: "shop", Name: "migrate-x7k2p", Hook: "migrate-", Status: "Succeeded", Deleted: true},
		{Phase: "PostSync", Kind: "Job", Namespace: "shop", Name: "smoke", Hook: "smoke", Status: "Failed", Message: "BackoffLimitExceeded\nmore"},
	}}
	v := api.AppView{Name: "shop", Sync: "Synced", Health: "Healthy", Clusters: []api.AppClusterView{
		{Cluster: "eu", Sync: "Synced", Health: "Healthy", LastOperation: op},
		{Cluster: "us", Sync: "Synced", Health: "Healthy"},
	}}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	appDetail(tw, v)
	tw.Flush()
	out := buf.String()
	i := strings.Index(out, "CLUSTER  HOOK PHASE")
	if i < 0 {
		t.Fatalf("no hook table in:\n%s", out)
	}
	want := `CLUSTER  HOOK PHASE  KIND  NAMESPACE  NAME                     STATUS     MESSAGE
eu       PreSync     Job   shop       migrate-x7k2p (deleted)  Succeeded  -
eu       PostSync    Job   shop       smoke                    Failed     BackoffLimitExceeded …
`
	if diff := cmp.Diff(want, out[i:]); diff != "" {
		t.Errorf("hook table (-want +got):\n%s", diff)
	}

	buf.Reset()
	v.Clusters[0].LastOperation = &api.OperationView{Phase: "Succeeded"}
	appDetail(tw, v)
	tw.Flush()
	if strings.Contains(buf.String(), "HOOK PHASE") {
		t.Errorf("hook table without hooks:\n%s", buf.String())
	}
}

// TestHistoryTableHooks: `flotilla app history` shows under each sync the
// hooks it ran.
func TestHistoryTableHooks(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := []api.HistoryEntry{
		{ID: 2, Cluster: "eu", Revision: "0123456789abcdef", StartedAt: at, FinishedAt: at.Add(1500 * time.Millisecond), InitiatedBy: "automated", Result: "Succeeded", Message: "synced 2 objects, ran 2 hooks",
			Hooks: []api.Hook{
				{Phase: "PreSync", Kind: "Job", Name: "migrate-x7k2p", Hook: "migrate-", Status: "Succeeded", Deleted: true},
				{Phase: "PostSync", Kind: "Job", Name: "smoke", Hook: "smoke", Status: "Succeeded"},
			}},
		{ID: 1, Cluster: "eu", Revision: "fedcba9876543210", StartedAt: at, FinishedAt: at.Add(time.Second), InitiatedBy: "automated", Result: "Succeeded", Message: "synced 2 objects"},
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	historyTable(tw, items)
	tw.Flush()
	want := "ID  CLUSTER  REVISION  FINISHED              DURATION  BY         RESULT     MESSAGE\n" +
		"2   eu       01234567  2026-01-02T03:04:06Z  1.5s      automated  Succeeded  synced 2 objects, ran 2 hooks\n" +
		"                                                                  Succeeded  PreSync hook Job migrate-x7k2p (deleted)\n" +
		"                                                                  Succeeded  PostSync hook Job smoke\n" +
		"1   eu       fedcba98  2026-01-02T03:04:06Z  1s        automated  Succeeded  synced 2 objects\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}
