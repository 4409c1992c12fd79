//go:build !unit

package hubclient_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	"github.com/flotilla-cd/flotilla/shared/identity"
)

// TestRenewalReloadsWithoutRestart: the agent renews its certificate over
// the stream before it expires, keeps it, and its next connection uses it,
// without restarting. The hub makes the new certificate current only when
// it is first used.
func TestRenewalReloadsWithoutRestart(t *testing.T) {
	f := newFixture(t, "--cert-ttl", "2m")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	// With a 2m certificate, renewing when 90% of it is left means about
	// a second after it was issued.
	a, err := f.enroll(ctx, "renewing", hubclient.Options{RenewBefore: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.ids.current()
	firstCert, err := identity.FirstCert(first.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	a.run(ctx, &wg)

	var renewedCert = firstCert
	err = harness.Eventually(ctx, time.Minute, 100*time.Millisecond, func() error {
		id, saves := a.ids.current()
		if saves == 0 {
			return fmt.Errorf("not renewed yet")
		}
		c, err := identity.FirstCert(id.CertPEM)
		if err != nil {
			return err
		}
		renewedCert = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if renewedCert.SerialNumber.Cmp(firstCert.SerialNumber) == 0 || renewedCert.Subject.CommonName != "renewing" || !renewedCert.NotAfter.After(firstCert.NotAfter) {
		t.Fatalf("renewed certificate %s serial %x until %s; first %x until %s", renewedCert.Subject, renewedCert.SerialNumber, renewedCert.NotAfter, firstCert.SerialNumber, firstCert.NotAfter)
	}
	if got := f.certNotAfter(ctx, "renewing"); !got.Equal(firstCert.NotAfter) {
		t.Errorf("hub lists a certificate until %s before the renewed one was used, want the first one's %s", got, firstCert.NotAfter)
	}

	// A new connection (the hub restarts) uses the renewed certificate.
	f.hub.Kill()
	if err := f.hub.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	err = harness.Eventually(ctx, time.Minute, 100*time.Millisecond, func() error {
		if got := f.certNotAfter(ctx, "renewing"); !got.Equal(renewedCert.NotAfter) {
			return fmt.Errorf("hub lists a certificate until %s, want the renewed one's %s", got, renewedCert.NotAfter)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := f.repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	waitSynced(t, f, rev, 1, time.Minute)
	if a.welcomed() < 2 {
		t.Errorf("welcomed %d times, want a reconnect", a.welcomed())
	}
}

// certNotAfter returns the expiry of the certificate the hub holds current
// for cluster.
func (f *fixture) certNotAfter(ctx context.Context, cluster string) time.Time {
	f.t.Helper()
	var v struct {
		CertNotAfter time.Time `json:"certNotAfter"`
	}
	if err := f.api(ctx, "GET", "/api/v1/clusters/"+cluster, nil, &v); err != nil {
		f.t.Fatal(err)
	}
	return v.CertNotAfter
}
