package agentapi

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

func TestAdmit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := func(serial string, issued time.Time) certInfo {
		return certInfo{Serial: serial, NotBefore: issued, NotAfter: issued.Add(24 * time.Hour)}
	}
	enrolled := store.Cluster{Name: "a", CertSerial: "c1", CertNotBefore: t0.Add(time.Hour)}
	renewing := enrolled
	renewing.PendingSerial, renewing.PendingNotBefore = "p2", t0.Add(2*time.Hour)
	revoked := enrolled
	revoked.Revoked = true
	legacy := enrolled // written before CertNotBefore existed
	legacy.CertNotBefore = time.Time{}

	tests := []struct {
		name    string
		cluster store.Cluster
		cert    certInfo
		want    verdict
		refused bool
		after   store.Cluster // after apply, when admitted
		normal  bool          // outside restore mode
	}{
		{name: "current", cluster: enrolled, cert: cert("c1", t0.Add(time.Hour)), want: admitCurrent, after: enrolled},
		{name: "older certificate is superseded", cluster: enrolled, cert: cert("c0", t0), refused: true},
		{name: "same second, other serial is superseded", cluster: enrolled, cert: cert("c9", t0.Add(time.Hour)), refused: true},
		{name: "revoked refuses the current certificate", cluster: revoked, cert: cert("c1", t0.Add(time.Hour)), refused: true},
		{name: "not enrolled", cluster: store.Cluster{Name: "a"}, cert: cert("c1", t0), refused: true},
		{name: "renewal answer lost: old certificate still works", cluster: renewing, cert: cert("c1", t0.Add(time.Hour)), want: admitCurrent, after: renewing},
		{
			name: "first use of the renewed certificate promotes it", cluster: renewing, cert: cert("p2", t0.Add(2*time.Hour)), want: admitPending,
			after: store.Cluster{Name: "a", CertSerial: "p2", CertNotBefore: t0.Add(2 * time.Hour), CertNotAfter: t0.Add(26 * time.Hour)},
		},
		{name: "between current and pending is refused", cluster: renewing, cert: cert("x", t0.Add(90*time.Minute)), refused: true},
		{
			name: "newer than the store knows (restored backup) is adopted", cluster: enrolled, cert: cert("c3", t0.Add(3*time.Hour)), want: admitNewer,
			after: store.Cluster{Name: "a", CertSerial: "c3", CertNotBefore: t0.Add(3 * time.Hour), CertNotAfter: t0.Add(27 * time.Hour)},
		},
		{
			name: "newer than a pending one is adopted", cluster: renewing, cert: cert("c3", t0.Add(3*time.Hour)), want: admitNewer,
			after: store.Cluster{Name: "a", CertSerial: "c3", CertNotBefore: t0.Add(3 * time.Hour), CertNotAfter: t0.Add(27 * time.Hour)},
		},
		{name: "no issue time stored: serial only", cluster: legacy, cert: cert("c3", t0.Add(3*time.Hour)), refused: true},
		{name: "newer is refused outside restore mode", cluster: enrolled, cert: cert("c3", t0.Add(3*time.Hour)), refused: true, normal: true},
		{name: "newer than a pending one is refused outside restore mode", cluster: renewing, cert: cert("c3", t0.Add(3*time.Hour)), refused: true, normal: true},
		{
			name: "newer but valid longer than the hub issues is refused in restore mode", cluster: enrolled, refused: true,
			cert: certInfo{Serial: "c4", NotBefore: t0.Add(3 * time.Hour), NotAfter: t0.Add(3*time.Hour + 24*time.Hour + 6*time.Minute)},
		},
		{name: "current outside restore mode", cluster: enrolled, cert: cert("c1", t0.Add(time.Hour)), want: admitCurrent, after: enrolled, normal: true},
		{
			name: "renewed outside restore mode", cluster: renewing, cert: cert("p2", t0.Add(2*time.Hour)), want: admitPending, normal: true,
			after: store.Cluster{Name: "a", CertSerial: "p2", CertNotBefore: t0.Add(2 * time.Hour), CertNotAfter: t0.Add(26 * time.Hour)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := admit(tt.cluster, tt.cert, adoption{restore: !tt.normal, maxLifetime: pki.Lifetime(24 * time.Hour)})
			if tt.refused {
				if !errors.Is(err, errRefused) {
					t.Fatalf("admit = %v, %v; want refused", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("admit = %v, %v; want %v", got, err, tt.want)
			}
			c := tt.cluster
			apply(&c, got, tt.cert)
			if d := cmp.Diff(tt.after, c); d != "" {
				t.Errorf("cluster after apply (-want +got):\n%s", d)
			}
		})
	}
}
