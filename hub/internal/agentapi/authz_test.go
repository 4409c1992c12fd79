package agentapi_test

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/identity"
)

// There is no field in which an agent names the cluster it acts for: the
// certificate is the identity. So "cluster A asking for cluster B" can only
// be A's agent saying it holds B's apps, reporting status for B's apps,
// renewing with a request naming B, or enrolling with B's token. Each of
// these stays within A.
func TestClusterCertificateActsOnlyForItsCluster(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	ctx := t.Context()
	a := h.enroll("a")
	h.enroll("b")
	appA, onlyB := bundle(t, "app-a", "a"), bundle(t, "app-b", "b")
	sharedA, sharedB := bundle(t, "shared", "for a"), bundle(t, "shared", "for b")
	h.fleet.SetAll(map[string]fleet.Desired{
		"a": {"app-a": appA, "shared": sharedA},
		"b": {"app-b": onlyB, "shared": sharedB},
	})

	// A claims to hold B's bundles.
	s, err := a.connect(ctx, h.addr, hello(digests(onlyB, sharedB)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.welcome.GetCluster() != "a" {
		t.Fatalf("welcomed as %q, want a", s.welcome.GetCluster())
	}
	ds := s.desired(t)
	var got []string
	for _, b := range ds.GetBundles() {
		got = append(got, b.GetApp()+"="+b.GetDigest())
	}
	want := []string{"app-a=" + appA.GetDigest(), "shared=" + sharedA.GetDigest()}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("bundles sent to a (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"app-b"}, ds.GetRemovedApps()); d != "" {
		t.Errorf("apps removed from a (-want +got):\n%s", d)
	}

	// A reports status for B's app, which a was never given: it is
	// dropped, and never recorded as B's either.
	for _, app := range []string{"app-b", "app-a"} {
		st := &apiv1alpha1.AppStatus{App: app, Digest: "sha256:x", Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED}
		if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Status{Status: st}}); err != nil {
			t.Fatal(err)
		}
	}
	// A renewal waits for the statuses before it (one receive loop), so
	// its answer means they were recorded.
	_, csrPEM, err := newCSR("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Renew{Renew: &apiv1alpha1.RenewRequest{CsrPem: csrPEM}}}); err != nil {
		t.Fatal(err)
	}
	var renewed *apiv1alpha1.RenewResponse
	for renewed == nil {
		renewed = s.next(t).GetRenew()
	}
	for cluster, want := range map[string][]string{"a": {"app-a"}, "b": nil} {
		recs, err := h.st.ListStatus(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.Status.GetApp())
		}
		sort.Strings(got)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("stored statuses of %s (-want +got):\n%s", cluster, d)
		}
		if n := len(h.fleet.Status()[cluster]); n != len(want) {
			t.Errorf("fleet holds %d statuses of %s, want %d", n, cluster, len(want))
		}
	}

	// The renewal asked for B and got A.
	cert, err := identity.FirstCert(renewed.GetCertificatePem())
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "a" {
		t.Errorf("renewal issued for %q, want a", cert.Subject.CommonName)
	}

	// A's agent enrolling with its own connection to B's name needs B's
	// token; A's token does not do.
	tokA := h.addCluster("a", time.Minute)
	if _, err := enroll(ctx, h.addr, "b", tokA, h.ca.Hash()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("enrol b with a's token: %v; want Unauthenticated", err)
	}
}

func TestRemovedClusterStreamIsClosed(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	ctx := t.Context()
	a := h.enroll("a")
	s, err := a.connect(ctx, h.addr, hello(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	// What `flotilla cluster remove` does (httpapi.removeCluster).
	if err := h.st.DeleteCluster(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	h.fleet.Forget("a")
	if err := s.ended(t); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream of the removed cluster ended with %v; want PermissionDenied", err)
	}
	if _, err := a.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reconnect of the removed cluster: %v; want PermissionDenied", err)
	}
	// Adding a cluster of the same name does not bring the old identity back.
	h.addCluster("a", time.Minute)
	if _, err := a.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("old identity after the cluster was added again: %v; want PermissionDenied", err)
	}
}

func TestReenrolmentSupersedesTheOldCertificate(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	ctx := t.Context()
	old := h.enroll("a")
	s, err := old.connect(ctx, h.addr, hello(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	cur := h.enroll("a")
	if err := s.ended(t); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("old stream ended with %v; want PermissionDenied", err)
	}
	if _, err := old.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("connect with the superseded certificate: %v; want PermissionDenied", err)
	}
	s2, err := cur.connect(ctx, h.addr, hello(nil))
	if err != nil {
		t.Fatalf("connect with the new certificate: %v", err)
	}
	s2.close()
}
