//go:build !unit

package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// everything is one of each kind of record a store holds, with the raw
// tokens that must go on working after a migration.
type everything struct {
	join, api, session string
}

func fillEverything(t *testing.T, s Store) everything {
	t.Helper()
	ctx := t.Context()
	var ev everything
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutCA(ctx, []byte("ca-cert"), []byte("ca-key")))
	for i, name := range []string{"prod-eu-1", "Weird Name/ä", "staging"} {
		must(s.CreateCluster(ctx, Cluster{Name: name, Labels: map[string]string{"env": "prod", "i": fmt.Sprint(i)}, CreatedAt: t0,
			CertSerial: "0a", CertNotBefore: t0, CertNotAfter: t0.Add(time.Hour), PendingSerial: "0b", EnrolledAt: t0,
			LastSeen: t0.Add(time.Minute), AgentVersion: "v1.2.3", Revoked: i == 2}))
		must(s.PutStatus(ctx, name, testStatus("web", "r1")))
		must(s.PutStatus(ctx, name, testStatus("db", "r2")))
		must(s.PutCapabilities(ctx, ClusterCapabilities{Cluster: name, KubeVersion: "v1.31.0", APIVersions: []string{"v1", "apps/v1"}, ReportedAt: t0}))
	}
	var err error
	ev.join, err = s.CreateJoinToken(ctx, "prod-eu-1", time.Hour, t0)
	must(err)
	used, err := s.CreateJoinToken(ctx, "staging", time.Hour, t0)
	must(err)
	must(s.ConsumeJoinToken(ctx, "staging", used, t0.Add(time.Second)))
	ev.api, _, err = s.CreateAPIToken(ctx, "ci", RoleAdmin, t0)
	must(err)
	_, _, err = s.IssueAPIToken(ctx, APIToken{Name: "deploy", Role: RoleDeployer, Projects: []string{"team-a"}, ExpiresAt: t0.Add(48 * time.Hour)}, t0)
	must(err)
	ev.session, _, err = s.IssueAPIToken(ctx, APIToken{Name: "Ada", Role: RoleReadOnly, Kind: KindWebSession, Subject: "sub-1", Email: "ada@example.com", ExpiresAt: t0.Add(time.Hour)}, t0)
	must(err)
	for i := range 5 {
		e := histEntry([]string{"web", "db"}[i%2], "prod-eu-1", i)
		e.Hooks = []HookRecord{{Phase: "PreSync", Kind: "Job", Namespace: "web", Name: "migrate-x", Hook: "migrate-", Status: "Succeeded", StartedAt: t0, FinishedAt: t0.Add(time.Second), Deleted: true}}
		_, err := s.AppendHistory(ctx, e)
		must(err)
		must(s.AppendAudit(ctx, AuditEntry{Time: t0.Add(time.Duration(i) * time.Second), Actor: "admin", Action: "sync", Target: fmt.Sprintf("app/%d", i), Detail: "d"}))
	}
	must(s.PutPin(ctx, Pin{App: "web", Cluster: "prod-eu-1", Revision: "r1", CreatedAt: t0}))
	must(s.PutPin(ctx, Pin{App: "db", Revision: "r2", CreatedAt: t0}))
	must(s.PutRollout(ctx, RolloutRecord{App: "web", State: []byte(`{"app":"web","step":1,"to":"r3"}`), UpdatedAt: t0}))
	must(s.PutRollout(ctx, RolloutRecord{App: "db", State: []byte(`{"app":"db","to":"r2"}`), UpdatedAt: t0}))
	return ev
}

// snapshot is every listing of a store.
type snapshot struct {
	CA         [2]string
	Clusters   []Cluster
	JoinTokens []JoinToken
	APITokens  []APIToken
	Statuses   []StatusRecord
	History    []HistoryEntry
	Audit      []AuditEntry
	Pins       []Pin
	Caps       []ClusterCapabilities
	Rollouts   []RolloutRecord
}

func takeSnapshot(t *testing.T, s Store) snapshot {
	t.Helper()
	ctx := t.Context()
	var sn snapshot
	var err error
	cert, key, err := s.GetCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sn.CA = [2]string{string(cert), string(key)}
	if sn.Clusters, _, err = s.ListClusters(ctx, Page{Limit: MaxPageLimit}); err != nil {
		t.Fatal(err)
	}
	for _, c := range sn.Clusters {
		if tok, err := s.GetJoinToken(ctx, c.Name); err == nil {
			sn.JoinTokens = append(sn.JoinTokens, tok)
		}
	}
	if sn.APITokens, _, err = s.ListAPITokens(ctx, Page{Limit: MaxPageLimit}); err != nil {
		t.Fatal(err)
	}
	if sn.Statuses, err = s.ListStatus(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if sn.History, _, err = s.ListHistory(ctx, "", "", Page{Limit: MaxPageLimit}); err != nil {
		t.Fatal(err)
	}
	if sn.Audit, _, err = s.ListAudit(ctx, Page{Limit: MaxPageLimit}); err != nil {
		t.Fatal(err)
	}
	if sn.Pins, err = s.ListPins(ctx); err != nil {
		t.Fatal(err)
	}
	if sn.Caps, err = s.ListCapabilities(ctx); err != nil {
		t.Fatal(err)
	}
	if sn.Rollouts, err = s.ListRollouts(ctx); err != nil {
		t.Fatal(err)
	}
	return sn
}

// TestMigrateRoundTrip: bbolt → kubernetes → bbolt, and kubernetes →
// bbolt → kubernetes, keep every record of every kind as it was (IDs,
// hashes and times), and the tokens made before go on working.
func TestMigrateRoundTrip(t *testing.T) {
	kubeBackend := backendNamed(t, "kubernetes")
	tests := []struct {
		name     string
		from, to backend
	}{
		{"bbolt to kubernetes and back", boltBackend, kubeBackend},
		{"kubernetes to bbolt and back", kubeBackend, boltBackend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			src, _ := tt.from.open(t, Options{})
			ev := fillEverything(t, src)
			want := takeSnapshot(t, src)
			if len(want.History) != 5 || len(want.Audit) != 5 || len(want.APITokens) != 3 || len(want.JoinTokens) != 2 {
				t.Fatalf("source holds less than it was given: %+v", want)
			}

			mid, _ := tt.to.open(t, Options{})
			if _, err := Migrate(ctx, mid.(Importer), src); err != nil {
				t.Fatal(err)
			}
			back, _ := tt.from.open(t, Options{})
			n, err := Migrate(ctx, back.(Importer), mid)
			if err != nil {
				t.Fatal(err)
			}
			wantN := MigrateCounts{Clusters: 3, JoinTokens: 2, APITokens: 3, Statuses: 6, History: 5, Audit: 5, Pins: 2, Capabilities: 3, Rollouts: 2, CA: true}
			if diff := cmp.Diff(wantN, n); diff != "" {
				t.Errorf("records copied (-want +got):\n%s", diff)
			}
			for name, s := range map[string]Store{"migrated": mid, "migrated back": back} {
				if diff := cmp.Diff(want, takeSnapshot(t, s), protocmp.Transform()); diff != "" {
					t.Errorf("%s store (-want +got):\n%s", name, diff)
				}
				for _, raw := range []string{ev.api, ev.session} {
					if _, err := s.LookupAPIToken(ctx, raw); err != nil {
						t.Errorf("%s store: token made before the migration: %v", name, err)
					}
				}
			}
			if err := back.ConsumeJoinToken(ctx, "prod-eu-1", ev.join, t0.Add(time.Minute)); err != nil {
				t.Errorf("join token made before the migration: %v", err)
			}
			// New records after the migration get IDs after the old ones.
			id, err := back.AppendHistory(ctx, histEntry("web", "prod-eu-1", 9))
			if err != nil || id <= want.History[0].ID {
				t.Errorf("history appended after the migration: ID %d (err %v), want above %d", id, err, want.History[0].ID)
			}
		})
	}
}
