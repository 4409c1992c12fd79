//go:build !unit

package security

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestAgentCannotReportAppsItWasNotGiven replays finding 7: an enrolled
// agent reported statuses for 20,000 invented apps (400 MB of hub memory,
// 250 MB of hub.db) and wrote history rows, with a Rollback button, into an
// app it does not run. The agent here enrols for real with a join token and
// speaks the protocol by hand over its own certificate.
func TestAgentCannotReportAppsItWasNotGiven(t *testing.T) {
	t.Parallel()
	_, repo := gitRepo(t, "config")
	if err := repo.Write(map[string][]byte{"cm/cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("one config map"); err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, cluster := range map[string]string{"mine": "evil", "web": "other"} {
		def := fmt.Sprintf("apiVersion: flotilla.dev/v1alpha1\nkind: Application\nmetadata: {name: %s}\nspec:\n  source: {repoURL: %s, targetRevision: main, path: cm}\n  destination: {namespace: %s, clusters: [%s]}\n", name, repo.URL, name, cluster)
		if err := os.WriteFile(filepath.Join(apps, name+".yaml"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := startHub(t, apps)
	ctx := t.Context()
	if _, err := h.AddCluster(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	id := enrol(t, h, "evil")
	s, err := connect(t, h, id.cert)
	if err != nil {
		t.Fatal(err)
	}
	// The hub gives evil its one app.
	for got := false; !got; {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for the desired state: %v", err)
		}
		for _, b := range m.GetDesired().GetBundles() {
			got = got || b.GetApp() == "mine"
		}
	}
	dbPath := filepath.Join(h.StateDir, "hub.db")
	before := fileSize(t, dbPath)

	finished := func(app string) *apiv1alpha1.AppStatus {
		now := timestamppb.Now()
		st := &apiv1alpha1.AppStatus{
			App: app, Digest: "sha256:forged", Revision: "forged", Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED,
			Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY, ObservedAt: now,
			LastOperation: &apiv1alpha1.Operation{Phase: apiv1alpha1.Operation_PHASE_SUCCEEDED, Revision: "forged", Digest: "sha256:forged", InitiatedBy: "automated", StartedAt: now, FinishedAt: now},
		}
		for i := range 50 {
			st.Objects = append(st.Objects, &apiv1alpha1.ObjectStatus{Version: "v1", Kind: "ConfigMap", Namespace: app, Name: fmt.Sprintf("cm-%d", i), Message: strings.Repeat("x", 200)})
		}
		return st
	}
	send := func(st *apiv1alpha1.AppStatus) {
		if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Status{Status: st}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		send(finished(fmt.Sprintf("invented-%04d", i)))
	}
	send(finished("web")) // an app of another cluster
	send(finished("mine"))
	s.renewed(t, "evil") // every status above was handled

	// The agent's own app is reported and its operation recorded.
	eventually(t, 30*time.Second, "mine's history entry from evil", func() error {
		es, err := history(ctx, h, "/api/v1/clusters/evil/history")
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return fmt.Errorf("no history of evil yet")
		}
		return nil
	})
	es, err := history(ctx, h, "/api/v1/clusters/evil/history")
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, e := range es {
		ran = append(ran, e.App)
	}
	if d := cmp.Diff([]string{"mine"}, ran); d != "" {
		t.Errorf("history rows of evil (-want +got):\n%s", d)
	}
	if es, err := history(ctx, h, "/api/v1/apps/web/history"); err != nil || len(es) != 0 {
		t.Errorf("history of web, an app evil does not run: %v, %v; want none", es, err)
	}
	if err := h.DoJSON(ctx, "GET", "/api/v1/apps/invented-0000/history", nil, nil); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("history of an invented app: %v; want HTTP 404", err)
	}
	list, err := h.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range list {
		names = append(names, a.Name)
		if c := a.Cluster("evil"); c != nil && a.Name != "mine" {
			t.Errorf("app %s shows a status of evil: %+v", a.Name, c)
		}
	}
	sort.Strings(names)
	if d := cmp.Diff([]string{"mine", "web"}, names); d != "" {
		t.Errorf("apps the API lists (-want +got):\n%s", d)
	}
	if after := fileSize(t, dbPath); after-before > 4<<20 {
		t.Errorf("hub.db grew from %d to %d bytes; want < 4 MiB of growth", before, after)
	}
}

func history(ctx context.Context, h *harness.Hub, path string) ([]api.HistoryEntry, error) {
	var out api.ListResponse[api.HistoryEntry]
	err := h.DoJSON(ctx, "GET", path, nil, &out)
	return out.Items, err
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
