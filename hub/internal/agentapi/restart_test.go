package agentapi_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestHubRestartAndRestore stops the hub and starts it again on the same
// store file, then on a backup taken before a certificate renewal: the CA,
// the clusters and the statuses come back, and the agent keeps working with
// the certificate it holds.
func TestHubRestartAndRestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.db")
	clk := newClock()
	h := startHub(t, path, "127.0.0.1:0", clk)
	ctx := t.Context()
	addr, pin := h.addr, h.ca.Hash()
	a1 := h.enroll("a")
	v1 := bundle(t, "app", "v1")
	h.fleet.SetAll(map[string]fleet.Desired{"a": {"app": v1}})
	s := connectOK(t, ctx, h, a1)
	if ds := s.desired(t); len(ds.GetBundles()) != 1 {
		t.Fatalf("desired %v", ds)
	}
	st := &apiv1alpha1.AppStatus{App: "app", Digest: v1.GetDigest(), Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED}
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Status{Status: st}}); err != nil {
		t.Fatal(err)
	}

	// Back up, then renew (a second later, as renewals are hours apart).
	bak, err := os.Create(filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.Backup(ctx, bak); err != nil {
		t.Fatal(err)
	}
	if err := bak.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	a2 := renew(t, s, a1) // the renewal also waited for the status
	s.close()
	connectOK(t, ctx, h, a2).close()
	wantSerials(t, h, a2.serial(), "")

	t.Run("restart", func(t *testing.T) {
		h.stop()
		h = startHub(t, path, addr, clk)
		if h.ca.Hash() != pin {
			t.Fatalf("CA hash %s after restart, was %s", h.ca.Hash(), pin)
		}
		recs, err := h.st.ListStatus(ctx, "a")
		if err != nil || len(recs) != 1 || recs[0].Status.GetDigest() != v1.GetDigest() {
			t.Fatalf("statuses after restart: %v, %v", recs, err)
		}
		// The agent holds v1; only what differs is sent.
		v2 := bundle(t, "other", "v2")
		h.fleet.SetAll(map[string]fleet.Desired{"a": {"app": v1, "other": v2}})
		s, err := a2.connect(ctx, h.addr, hello(digests(v1)))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		ds := s.desired(t)
		if d := cmp.Diff([]string{"other"}, appsOf(ds)); d != "" || len(ds.GetRemovedApps()) != 0 {
			t.Errorf("sent after restart (-want +got):\n%s removed %v", d, ds.GetRemovedApps())
		}
	})

	t.Run("restore from a backup older than the agent's certificate", func(t *testing.T) {
		h.stop()
		b, err := os.ReadFile(filepath.Join(dir, "backup.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// Outside restore mode the certificate the backup does not know
		// is refused: it could as well be made with a stolen CA key.
		h = startHub(t, path, addr, clk)
		if h.ca.Hash() != pin {
			t.Fatalf("CA hash %s after restore, was %s", h.ca.Hash(), pin)
		}
		if _, err := a2.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("a certificate the store does not know, outside restore mode: %v; want PermissionDenied", err)
		}
		h.stop()
		h = startHubWith(t, path, addr, clk, agentapi.Options{RestoreMode: true})
		wantSerials(t, h, a1.serial(), "") // the backup knows only the first certificate
		h.fleet.SetAll(map[string]fleet.Desired{"a": {"app": v1}})
		s := connectOK(t, ctx, h, a2)
		s.close()
		wantSerials(t, h, a2.serial(), "")
		if _, err := a1.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("the certificate the renewal replaced: %v; want PermissionDenied", err)
		}
	})
}

func appsOf(ds *apiv1alpha1.DesiredState) []string {
	var out []string
	for _, b := range ds.GetBundles() {
		out = append(out, b.GetApp())
	}
	return out
}
