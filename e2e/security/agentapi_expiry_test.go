//go:build !unit

package security

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStreamEndsWhenItsCertificateExpires replays the part of finding 10
// where an open stream outlived its certificate's NotAfter: the stream is
// ended then. Renewal over the stream before that keeps working, and the
// renewed certificate connects again.
func TestStreamEndsWhenItsCertificateExpires(t *testing.T) {
	t.Parallel()
	h := startHub(t, "", "--cert-ttl", "2m") // the shortest the hub takes
	id := enrol(t, h, "a")
	s, err := connect(t, h, id.cert)
	if err != nil {
		t.Fatal(err)
	}
	// The agent renews at two thirds of its certificate's lifetime, as
	// flotilla-agent does, so that the new one outlives the old.
	life := id.leaf.NotAfter.Sub(id.leaf.NotBefore)
	<-time.After(time.Until(id.leaf.NotBefore.Add(life * 2 / 3)))
	resp, key := s.renewed(t, "a")
	renewed := identityOf(t, "a", resp.GetCertificatePem(), key)
	if !renewed.leaf.NotAfter.After(id.leaf.NotAfter) {
		t.Fatalf("renewed certificate valid until %s, not after the first one's %s", renewed.leaf.NotAfter, id.leaf.NotAfter)
	}

	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if now := time.Now(); now.Before(id.leaf.NotAfter.Add(-time.Second)) {
			t.Fatalf("stream ended at %s, before its certificate expired at %s: %v", now, id.leaf.NotAfter, err)
		}
		if status.Code(err) != codes.Unavailable {
			t.Errorf("stream ended with %v; want Unavailable (reconnect)", err)
		}
	case <-time.After(time.Until(id.leaf.NotAfter) + time.Minute):
		t.Fatalf("stream still open a minute after its certificate expired at %s", id.leaf.NotAfter)
	}

	s2, err := connect(t, h, renewed.cert)
	if err != nil {
		t.Fatalf("connect with the renewed certificate: %v", err)
	}
	s2.cancel()
}
