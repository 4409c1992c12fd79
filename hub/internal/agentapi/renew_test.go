package agentapi_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/identity"
)

// renew renews a's certificate over s and returns the agent with the new
// certificate (a keeps the old one).
func renew(t *testing.T, s *stream, a *agent) *agent {
	t.Helper()
	keyPEM, csrPEM, err := newCSR(a.cluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Renew{Renew: &apiv1alpha1.RenewRequest{CsrPem: csrPEM}}}); err != nil {
		t.Fatal(err)
	}
	for {
		if r := s.next(t).GetRenew(); r != nil {
			return &agent{cluster: a.cluster, keyPEM: keyPEM, certPEM: r.GetCertificatePem(), caPEM: a.caPEM}
		}
	}
}

func connectOK(t *testing.T, ctx context.Context, h *hub, a *agent) *stream {
	t.Helper()
	s, err := a.connect(ctx, h.addr, hello(nil))
	if err != nil {
		t.Fatalf("connect with certificate %s: %v", a.serial(), err)
	}
	return s
}

func wantSerials(t *testing.T, h *hub, current, pending string) {
	t.Helper()
	c, err := h.st.GetCluster(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if c.CertSerial != current || c.PendingSerial != pending {
		t.Fatalf("stored serials current=%q pending=%q; want %q, %q", c.CertSerial, c.PendingSerial, current, pending)
	}
}

func TestRenewal(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	ctx := t.Context()
	a1 := h.enroll("a")
	s := connectOK(t, ctx, h, a1)
	a2 := renew(t, s, a1)
	cert, err := identity.FirstCert(a2.certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "a" || a2.serial() == a1.serial() {
		t.Fatalf("renewed certificate %s serial %s", cert.Subject, a2.serial())
	}
	wantSerials(t, h, a1.serial(), a2.serial())

	// The answer was lost with the stream: the agent still has only the old
	// certificate, and it still works.
	s.close()
	s = connectOK(t, ctx, h, a1)
	s.close()
	wantSerials(t, h, a1.serial(), a2.serial())

	// The first connection with the new certificate makes it current and
	// supersedes the old one.
	s = connectOK(t, ctx, h, a2)
	defer s.close()
	wantSerials(t, h, a2.serial(), "")
	if _, err := a1.connect(ctx, h.addr, hello(nil)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("connect with the superseded certificate: %v; want PermissionDenied", err)
	}

	// A renewal on a stream whose certificate was superseded in the
	// moment before the hub closed that stream is refused: here the store
	// changes under an open stream, as an enrolment does just before it
	// closes the cluster's session.
	if err := h.st.UpdateCluster(ctx, "a", func(c *store.Cluster) error {
		c.CertSerial = "superseded-elsewhere"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, csrPEM, err := newCSR("a")
	if err != nil {
		t.Fatal(err)
	}
	// The hub may already have closed the stream (its post-attach check can
	// see the change first): Send then returns io.EOF and the stream's
	// status tells why, as for a refused renewal.
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Renew{Renew: &apiv1alpha1.RenewRequest{CsrPem: csrPEM}}}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if err := s.ended(t); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("renewal on a superseded stream: %v; want PermissionDenied", err)
	}
	wantSerials(t, h, "superseded-elsewhere", "")
}
